"""`OpenStackProvider`: the embedded engine's `Provider` for `openstack:*` types, via openstacksdk.

One instance per provider configuration (`openstack:cloud`, `openstack:tenantName`,
`openstack:region` from stack config, or an explicit `openstack.Provider`), holding one
openstacksdk connection that its calls share. The clouds.yaml is the one given, else
openstacksdk's usual search (`OS_CLIENT_CONFIG_FILE`, ~/.config/openstack, /etc/openstack).
"""

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import openstack.config
import openstack.connection
from keystoneauth1.session import TCPKeepAliveAdapter

from pulumi_embedded.openstack.errors import NotFound, translate
from pulumi_embedded.openstack.invokes import INVOKES
from pulumi_embedded.openstack.resources import HANDLERS
from pulumi_embedded.openstack.resources.base import Handler
from pulumi_embedded.openstack.schema import FORCE_NEW, SECRET_OUTPUTS
from pulumi_embedded.provider import CloudError, Created, Provider, UnknownType

log = logging.getLogger("tonle.engine.openstack")

T = TypeVar("T")

# HTTP connections kept per cloud endpoint (parallel steps share one provider).
POOL_SIZE = 64

# Provider settings the layer understands; others are ignored with a warning.
KNOWN_SETTINGS = {"cloud", "tenantName", "region", "insecure", "version"}


class OpenStackProvider:
    def __init__(self, config: dict[str, Any], *, clouds_yaml: Path | None = None) -> None:
        self.config = config
        self.clouds_yaml = clouds_yaml
        self._conn: openstack.connection.Connection | None = None
        self._lock = threading.Lock()
        ignored = sorted(set(config) - KNOWN_SETTINGS)
        if ignored:
            log.warning("openstack provider: ignoring settings %s (only %s are used)", ignored, sorted(KNOWN_SETTINGS))
        missing = set(HANDLERS) ^ set(FORCE_NEW)
        assert not missing, f"handlers and replace rules disagree on {missing}"

    @classmethod
    def factory(cls, clouds_yaml: Path | None = None) -> Callable[[dict[str, Any]], Provider]:
        """A `ProviderFactory` that reads the given clouds.yaml."""
        return lambda config: cls(config, clouds_yaml=clouds_yaml)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "OpenStackProvider":
        return cls(config)

    # ---- connection ----

    @property
    def conn(self) -> openstack.connection.Connection:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            return self._conn

    def _connect(self) -> openstack.connection.Connection:
        cloud = self.config.get("cloud")
        if not cloud:
            raise CloudError("no OpenStack cloud configured: set the stack's `openstack:cloud` (a clouds.yaml entry)")
        files = [str(self.clouds_yaml)] if self.clouds_yaml else None
        with translate(f"connect to cloud {cloud!r}"):
            try:
                config = openstack.config.OpenStackConfig(config_files=files)
                overrides: dict[str, Any] = {}
                if self.config.get("tenantName"):
                    overrides["project_name"] = self.config["tenantName"]
                if self.config.get("insecure") is not None:
                    overrides["verify"] = not self.config["insecure"]
                region = config.get_one(cloud=cloud, region_name=self.config.get("region") or None, **overrides)
            except openstack.exceptions.ConfigException as exc:
                where = self.clouds_yaml or "the default clouds.yaml locations"
                raise CloudError(f"cloud {cloud!r} is not in {where}: {exc}") from exc
            conn = openstack.connection.Connection(config=region)
        # The engine calls the cloud from up to `parallel` threads at once; requests' default pool
        # keeps 10 connections per host and logs a warning for every one it has to discard.
        adapter = TCPKeepAliveAdapter(pool_connections=POOL_SIZE, pool_maxsize=POOL_SIZE)
        for scheme in ("https://", "http://"):
            conn.session.session.mount(scheme, adapter)
        return conn

    # ---- Provider ----

    def _handler(self, type_: str) -> Handler:
        handler = HANDLERS.get(type_)
        if handler is None:
            raise UnknownType(type_, list(HANDLERS))
        return handler

    def force_new(self, type_: str) -> frozenset[str]:
        self._handler(type_)
        return FORCE_NEW[type_]

    def secret_outputs(self, type_: str) -> frozenset[str]:
        return SECRET_OUTPUTS.get(type_, frozenset())

    def create(self, type_: str, inputs: dict[str, Any]) -> Created:
        handler = self._handler(type_)
        with translate(f"create {type_} {inputs.get('name', '')}".rstrip()):
            created = handler.create(self.conn, inputs)
        log.info("created %s %s", type_, created.id)
        return created

    def read(self, type_: str, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        handler = self._handler(type_)
        try:
            with translate(f"read {type_} {id_}"):
                return handler.read(self.conn, id_, inputs)
        except NotFound:
            return None

    def update(self, type_: str, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        handler = self._handler(type_)
        with translate(f"update {type_} {id_}"):
            outputs = handler.update(self.conn, id_, old, new)
        log.info("updated %s %s", type_, id_)
        return outputs

    def delete(self, type_: str, id_: str, outputs: dict[str, Any]) -> None:
        handler = self._handler(type_)
        try:
            with translate(f"delete {type_} {id_}"):
                handler.delete(self.conn, id_, outputs)
        except NotFound:
            log.info("%s %s was already gone", type_, id_)
            return
        log.info("deleted %s %s", type_, id_)

    def find(self, type_: str, inputs: dict[str, Any]) -> Created | None:
        handler = self._handler(type_)
        with translate(f"look for {type_} {inputs.get('name', '')}".rstrip()):
            return handler.find(self.conn, inputs)

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        function = INVOKES.get(token)
        if function is None:
            raise UnknownType(token, list(INVOKES))
        with translate(f"{token.rsplit(':', 1)[-1]}"):
            return function(self.conn, args)
