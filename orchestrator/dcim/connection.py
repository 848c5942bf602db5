"""Which DCIM this orchestrator talks to, from the settings; None when there is none.

A site without a DCIM refuses co-location orders (`require`): racks are kept only in the DCIM, so
without one nothing could be placed, reserved or installed.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, cast

import requests
from pynautobot.core.query import RequestError
from requests.adapters import HTTPAdapter

from orchestrator.config import Settings, get_settings
from orchestrator.errors import Conflict, Unavailable
from orchestrator.ports import Dcim

log = logging.getLogger("tonle.dcim")

_lock = threading.Lock()
_connected: dict[tuple[str, str], Dcim] = {}

# Seconds to connect to the DCIM, and to wait for each answer: a hung DCIM must not hold an API
# request, a worker, or the per-site placement lock for ever.
TIMEOUT = (5.0, 60.0)

NOT_CONFIGURED = (
    "co-location needs the data centre's DCIM, and none is configured for this orchestrator "
    "(set TONLE_DCIM_URL and TONLE_DCIM_TOKEN, or TONLE_DCIM_CONFIG)"
)


def _address(settings: Settings) -> tuple[str, str] | None:
    """(url, token) from the settings, or from the config file once it exists (the local data
    centre writes it when its Nautobot is seeded, which may be after the orchestrator starts)."""
    if settings.dcim_url and settings.dcim_token:
        return settings.dcim_url, settings.dcim_token.get_secret_value()
    if settings.dcim_config is None or not settings.dcim_config.is_file():
        return None
    try:
        data = json.loads(settings.dcim_config.read_text())
        return str(data["url"]), str(data["token"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("the DCIM config %s is unreadable: %s", settings.dcim_config, exc)
        return None


def connect(settings: Settings | None = None) -> Dcim | None:
    """The DCIM adapter (one per URL and token in a process), or None when none is configured."""
    address = _address(settings or get_settings())
    if address is None:
        return None
    with _lock:
        if address not in _connected:
            from orchestrator.dcim.nautobot import NautobotDcim

            url, token = address
            nautobot = NautobotDcim(url=url, token=token)
            for scheme in ("http://", "https://"):
                nautobot.api.http_session.mount(scheme, _TimeoutAdapter())
            _connected[address] = cast(Dcim, _Guarded(nautobot))
            log.info("DCIM: Nautobot at %s", url)
        return _connected[address]


class NotConfigured(Conflict):
    """No DCIM is configured, or the configured one's address is not written yet."""


def require(settings: Settings | None = None) -> Dcim:
    dcim = connect(settings)
    if dcim is None:
        raise NotConfigured(NOT_CONFIGURED)
    return dcim


class _TimeoutAdapter(HTTPAdapter):
    """requests has no session-wide timeout, and pynautobot passes none."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = TIMEOUT
        return super().send(request, **kwargs)


class _Guarded:
    """The DCIM adapter, its failures said as `Unavailable` (503 in the API; a worker's step
    retries it with backoff) naming what was asked, instead of a library's exception."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute
        return _guard(name, attribute)


def _guard(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except requests.Timeout as exc:
            log.warning("DCIM %s timed out: %s", name, exc)
            raise Unavailable(f"the data centre's DCIM did not answer in time ({name}); try again later") from exc
        except requests.ConnectionError as exc:
            log.warning("DCIM %s: cannot connect: %s", name, exc)
            raise Unavailable(f"the data centre's DCIM cannot be reached ({name}); try again later") from exc
        except RequestError as exc:
            log.warning("DCIM %s refused: %s", name, exc.error)
            raise Unavailable(f"the data centre's DCIM refused {name}: {str(exc.error)[:300]}") from exc

    return guarded


class _DeferredDcim:
    """The DCIM, resolved at each call: the worker may start before the DCIM's config file is
    written (the local data centre seeds Nautobot in the background)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def __getattr__(self, name: str) -> object:
        return getattr(require(self._settings), name)


def for_worker(settings: Settings) -> Dcim | None:
    """`Adapters.dcim`: None when no DCIM is configured at all, else one found when first used."""
    if settings.dcim_url is None and settings.dcim_config is None:
        return None
    return cast(Dcim, _DeferredDcim(settings))
