"""Bakes one image at one site: a server booted from the base image in the image builds' own
project, the role's image playbook run on it through the orchestrator's Ansible runner, a Nova
snapshot of it, active in Glance and public so every ministry's project can boot it.

The server and its network are a stack of their own (`stacks/image_build.py`) run by the same
engine as orders' stacks and reached the same way (floating IP from the management network,
host keys learned from its console), so destroying that stack removes everything the build
made. It is destroyed after every attempt, successful or not, and before one starts (what an
interrupted attempt left); a snapshot is deleted unless the build succeeded.
"""

import io
import json
import logging
import tarfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.cloud import hostkeys
from orchestrator.cloud.sites import CloudConfigError, connect, site
from orchestrator.cloud.tenancy import project_name
from orchestrator.config import Settings
from orchestrator.ports import Adapters, EventSink, PlaybookRun, ProgressEvent, StackSpec, StepFailed
from orchestrator.services import keys

log = logging.getLogger("tonle.images")

# The tenancy's "ministry code" of image builds: project `tonle-_images`. Ministry codes start
# with a letter, so no ministry ever shares this project.
IMAGE_PROJECT_CODE = "_images"
STACK_PROGRAM = "image_build"
BUILD_FLAVOR = "m1.small"  # the install phase needs disk and time, not size
IMAGE_JSON = "etc/tonle/image.json"  # written by the image playbook's seal (playbooks/README.md)
MAX_IMAGE_JSON_BYTES = 256 * 1024
MAX_PACKAGES = 500
STOP_TIMEOUT_S = 180
SNAPSHOT_TIMEOUT_S = 1800


@dataclass(frozen=True)
class BuildSpec:
    image_id: uuid.UUID
    role: str
    site: str
    name: str  # the Glance image's name
    install_digest: str

    @property
    def stack_name(self) -> str:
        return f"image-{self.role}-{self.image_id.hex[:12]}"


@dataclass(frozen=True)
class Built:
    glance_image_id: str
    packages: dict[str, Any]  # image.json as the image says it
    size_bytes: int | None


class ImageBuilder:
    def __init__(self, *, settings: Settings, adapters: Adapters) -> None:
        self.settings = settings
        self.adapters = adapters
        if adapters.engine.name == "noop":
            raise StepFailed("image builds need a cloud: the engine is no-op (TONLE_ENGINE)")
        if adapters.config.name == "noop":
            raise StepFailed("image builds need Ansible: the configuration runner is no-op (TONLE_ANSIBLE)")

    def build(self, spec: BuildSpec, on_event: EventSink, *, leftovers: Sequence[BuildSpec] = ()) -> Built:
        """`leftovers`: earlier builds whose cleanup may not have finished (the cloud failed them)."""
        for earlier in [*leftovers, spec]:
            self._destroy_stack(earlier, on_event)
            self._delete_snapshots(earlier, on_event)
        try:
            built = self._build(spec, on_event)
        except BaseException:
            self._clean_up_quietly(spec, on_event, snapshots=True)
            raise
        self._clean_up_quietly(spec, on_event, snapshots=False)
        return built

    def retire(self, *, site_name: str, glance_image_id: str, on_event: EventSink) -> None:
        """Delete a retired image from Glance (gone already is fine)."""
        admin = connect(self.settings, self.settings.admin_cloud)
        try:
            admin.image.delete_image(glance_image_id, ignore_missing=True)
        finally:
            admin.close()
        on_event(ProgressEvent(type="image.retired", message=f"deleted image {glance_image_id} at {site_name}"))

    # --- the steps ---------------------------------------------------------------------------------

    def _build(self, spec: BuildSpec, on_event: EventSink) -> Built:
        key = keys.generate(f"tonle-image-build-{spec.image_id.hex[:8]}")
        provider = self.adapters.tenancy.ensure(
            ministry_code=IMAGE_PROJECT_CODE,
            ministry_name="Tonle image builds",
            site_name=spec.site,
            on_event=on_event,
        )
        on_event(
            ProgressEvent(type="image.server", message=f"booting a build server from {self.settings.server_image}")
        )
        outputs = self.adapters.engine.up(self._stack(spec, key.public_openssh, provider), on_event)
        hosts: dict[str, dict[str, Any]] = dict(outputs.get("hosts") or {})
        if len(hosts) != 1:
            raise StepFailed(f"the build stack outputs {len(hosts)} hosts, not one")
        server_id = str(next(iter(hosts.values())).get("server_id") or "")
        on_event(ProgressEvent(type="image.playbook", message=f"running playbook image_{spec.role}"))
        result = self.adapters.config.run(
            PlaybookRun(
                playbook=f"image_{spec.role}",
                hosts=hosts,
                extra_vars={"image": spec.role},
                ssh_private_key=key.private_openssh,
                label=f"image-{spec.image_id.hex[:8]}",
                known_hosts=self._known_hosts(spec, hosts, on_event),
            ),
            on_event,
        )
        if not result.ok:
            raise StepFailed(f"playbook image_{spec.role} failed: " + "; ".join(result.failures)[:1500])
        return self._snapshot(spec, server_id, on_event)

    def _stack(self, spec: BuildSpec, public_key: str, provider: Mapping[str, str]) -> StackSpec:
        settings = self.settings
        config: dict[str, Any] = {
            "tonle:ministry": IMAGE_PROJECT_CODE,
            "tonle:serviceId": str(spec.image_id),
            "tonle:requestId": str(spec.image_id),
            "tonle:offering": f"image-{spec.role}",
            "tonle:plan": "build",
            "tonle:sizes": {"flavor": BUILD_FLAVOR},
            "tonle:parameters": {"name": f"image-{spec.role}"},
            "tonle:externalNetwork": settings.external_network,
            "tonle:managementCidr": settings.management_cidr,
            "tonle:image": settings.server_image,
            "tonle:subnetPool": settings.subnet_pool,
            "tonle:sshPublicKey": public_key,
            **provider,
        }
        if settings.dns_resolvers:
            config["tonle:dnsResolvers"] = list(settings.dns_resolvers)
        return StackSpec(name=spec.stack_name, program=STACK_PROGRAM, config=config, tags={"image": spec.name})

    def _known_hosts(self, spec: BuildSpec, hosts: dict[str, dict[str, Any]], on_event: EventSink) -> str | None:
        source = self.adapters.host_keys
        if source is None:
            return None
        pinning = hostkeys.pin(
            pins={},
            hosts=hosts,
            learn=lambda host, host_spec: source.learn(
                host=host, spec=host_spec, ministry_code=IMAGE_PROJECT_CODE, site_name=spec.site, on_event=on_event
            ),
        )
        text = hostkeys.known_hosts(pinning.pins, hosts)
        source.verify(hosts=hosts, known_hosts=text)
        return text

    def _snapshot(self, spec: BuildSpec, server_id: str, on_event: EventSink) -> Built:
        conn = self._project_connection(spec.site)
        admin = connect(self.settings, self.settings.admin_cloud)
        try:
            # Stopped, the snapshot is of a quiet disk: nothing writes while Nova reads it.
            server = conn.compute.get_server(server_id)
            if server.status != "SHUTOFF":
                conn.compute.stop_server(server)
                conn.compute.wait_for_server(server, status="SHUTOFF", wait=STOP_TIMEOUT_S)
            on_event(ProgressEvent(type="image.snapshot", message=f"snapshotting the build server into {spec.name}"))
            image = conn.compute.create_server_image(
                server,
                name=spec.name,
                metadata={"tonle_role": spec.role, "tonle_install_digest": spec.install_digest},
                wait=True,
                timeout=SNAPSHOT_TIMEOUT_S,
            )
            image = conn.image.get_image(image.id)
            if image.status != "active":
                raise StepFailed(f"Glance says image {spec.name} is {image.status}, not active")
            # Orders boot it in their ministry's project: the image must be visible to every project.
            admin.image.update_image(image.id, visibility="public")
            packages = read_image_json(conn.image.download_image(image, stream=True).iter_content(1024 * 1024))
            if packages.get("image_role") != spec.role:
                raise StepFailed(
                    f"the image says it is of role {str(packages.get('image_role'))[:32]!r}, not {spec.role!r}"
                )
            on_event(
                ProgressEvent(
                    type="image.active",
                    message=f"image {spec.name} ({image.id}) is active, {image.size or 0} bytes",
                    data={"glance_image_id": image.id, "size_bytes": image.size},
                )
            )
            return Built(glance_image_id=str(image.id), packages=packages, size_bytes=image.size)
        finally:
            conn.close()
            admin.close()

    # --- cleaning up -------------------------------------------------------------------------------

    def _clean_up_quietly(self, spec: BuildSpec, on_event: EventSink, *, snapshots: bool) -> None:
        """Cleanup that never hides how the build ended; what it could not remove, the next build
        of the role at the site removes first (it is given this one among its `leftovers`)."""
        try:
            if snapshots:
                self._delete_snapshots(spec, on_event)
            self._destroy_stack(spec, on_event)
        except Exception as exc:
            log.exception("image %s: cleanup failed, the next build retries it", spec.name)
            on_event(
                ProgressEvent(
                    type="image.cleanup",
                    message=f"could not remove everything this build made yet (the next build does): {exc}"[:500],
                    level="warning",
                )
            )

    def _destroy_stack(self, spec: BuildSpec, on_event: EventSink) -> None:
        self.adapters.engine.destroy(spec.stack_name, on_event)

    def _delete_snapshots(self, spec: BuildSpec, on_event: EventSink) -> None:
        """Images of this build's name: a failed attempt's, or one an interrupted attempt left."""
        admin = connect(self.settings, self.settings.admin_cloud)
        try:
            for image in list(admin.image.images(name=spec.name)):
                admin.image.delete_image(image, ignore_missing=True)
                on_event(
                    ProgressEvent(
                        type="image.cleanup", message=f"deleted the unfinished image {spec.name} ({image.id})"
                    )
                )
        finally:
            admin.close()

    def _project_connection(self, site_name: str) -> Any:
        try:
            target = site(self.settings, site_name)
        except CloudConfigError as exc:
            raise StepFailed(str(exc)) from exc
        return connect(self.settings, target.cloud, project_name=project_name(IMAGE_PROJECT_CODE))


def read_image_json(chunks: Iterator[bytes]) -> dict[str, Any]:
    """`/etc/tonle/image.json` from the image's tar, read as it streams: the build server's
    SSH host keys are gone once it is sealed, so the image itself is where it is read. What it
    says is the image's word, hostile like anything a server reports: kept only in its shape."""
    with tarfile.open(fileobj=io.BufferedReader(_ChunkStream(chunks), 1024 * 1024), mode="r|*") as tar:
        for member in tar:
            if member.name.removeprefix("./").lstrip("/") != IMAGE_JSON:
                continue
            if not member.isfile() or member.size > MAX_IMAGE_JSON_BYTES:
                raise StepFailed(f"/{IMAGE_JSON} in the image is not a small regular file")
            data = tar.extractfile(member)
            assert data is not None
            try:
                raw = json.loads(data.read())
            except ValueError as exc:
                raise StepFailed(f"/{IMAGE_JSON} in the image is not JSON: {exc}") from exc
            return _image_facts(raw)
    raise StepFailed(f"the image has no /{IMAGE_JSON}: its playbook did not seal it")


def _image_facts(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise StepFailed(f"/{IMAGE_JSON} is not an object")
    packages = raw.get("packages") or {}
    roles = raw.get("roles") or []
    if not isinstance(packages, dict) or not isinstance(roles, list):
        raise StepFailed(f"/{IMAGE_JSON}: packages must be an object and roles a list")
    return {
        "image_role": str(raw.get("image_role") or "")[:32],
        "roles": [str(role)[:64] for role in roles[:50]],
        "packages": {str(name)[:128]: str(version)[:128] for name, version in list(packages.items())[:MAX_PACKAGES]},
    }


class _ChunkStream(io.RawIOBase):
    """A read-only stream over an iterator of byte chunks (an HTTP body), for tarfile's stream mode."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count
