"""openstacksdk / keystoneauth exceptions -> the engine's `CloudError`, with what was being done.

Transient: timeouts, connection failures, 5xx, 409 conflicts and 429 (the next attempt may
pass). Permanent: other 4xx (bad request, quota, forbidden), a resource that went to ERROR.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from keystoneauth1 import exceptions as ksa
from openstack import exceptions as osx

from pulumi_embedded.provider import CloudError


class NotFound(CloudError):
    """The resource does not exist (reads turn this into None, deletes into success)."""


@contextmanager
def translate(what: str) -> Iterator[None]:
    """Run a cloud call; re-raise its failure as a CloudError that says what was being done."""
    try:
        yield
    except CloudError:
        raise
    except osx.NotFoundException as exc:
        raise NotFound(f"{what}: not found ({_detail(exc)})") from exc
    except osx.ResourceTimeout as exc:
        raise CloudError(f"{what}: timed out waiting ({exc})", transient=True) from exc
    except osx.ResourceFailure as exc:
        raise CloudError(f"{what}: the resource went to an error state ({exc})") from exc
    except osx.HttpException as exc:
        status = exc.status_code or 0
        # 409 is mostly "busy, try again" (a resource still in a transition), but a name already
        # taken (Designate's "Duplicate Zone", Neutron's "already exists") will not pass by itself.
        duplicate = status == 409 and any(w in _detail(exc).lower() for w in ("duplicate", "already exists"))
        transient = status >= 500 or status == 429 or (status == 409 and not duplicate)
        raise CloudError(f"{what}: HTTP {status}: {_detail(exc)}", transient=transient) from exc
    except (ksa.ConnectFailure, ksa.ConnectTimeout, ksa.DiscoveryFailure, ksa.RetriableConnectionFailure) as exc:
        raise CloudError(f"{what}: cannot reach the cloud ({exc})", transient=True) from exc
    except ksa.Unauthorized as exc:
        raise CloudError(f"{what}: the cloud refused our credentials ({exc})") from exc
    except osx.SDKException as exc:
        raise CloudError(f"{what}: {exc}") from exc


def _detail(exc: osx.HttpException) -> str:
    return str(exc.details or exc.message or exc).strip()
