"""The resource monitor and engine objects the Pulumi SDK talks to, served in-process.

`pulumi.runtime.settings.Settings(monitor=..., engine=...)` accepts any object with the gRPC
stub's method names; the SDK calls them synchronously from its executor threads. These
classes only translate protobuf messages to and from the `Deployment`, which decides.
"""

import functools
import logging
from collections.abc import Callable
from typing import Any

from google.protobuf import empty_pb2
from pulumi.runtime.proto import engine_pb2, resource_pb2

from pulumi_embedded.deployment import Deployment, Registration
from pulumi_embedded.events import Emitter
from pulumi_embedded.protocol import from_struct, to_struct

log = logging.getLogger("tonle.engine.monitor")

# Features the SDK may use. Resource references and output values are off, so resources
# arrive as plain ids and values, and alias specs are off, so the SDK sends alias URNs.
SUPPORTED = {"secrets": True}


class _FeatureResponse:
    def __init__(self, has_support: bool) -> None:
        self.hasSupport = has_support


class MonitorError(Exception):
    """Something that is not an `Exception` escaped a monitor call (see `_as_exception`)."""


def _as_exception(call: Callable[..., Any]) -> Callable[..., Any]:
    """Hand the SDK only `Exception`s: it waits forever on an RPC that raised any other
    `BaseException` (found with a provider that raised one), so the program would hang."""

    @functools.wraps(call)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except Exception:
            raise
        except BaseException as exc:
            raise MonitorError(f"{type(exc).__name__}: {exc}") from exc

    return wrapper


class ResourceMonitor:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def SupportsFeature(self, request: Any) -> _FeatureResponse:
        return _FeatureResponse(SUPPORTED.get(request.id, False))

    def GetDeploymentInfo(self, request: Any) -> Any:
        return resource_pb2.DeploymentInfo(supportedFeatures=[resource_pb2.RESOURCE_MONITOR_FEATURE_SECRETS])

    @_as_exception
    def RegisterResource(self, request: Any) -> Any:
        reg = Registration(
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=request.custom,
            inputs=from_struct(request.object),
            provider=request.provider,
            version=request.version,
            dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            protect=request.protect,
            delete_before_replace=request.deleteBeforeReplace,
            ignore_changes=list(request.ignoreChanges),
            replace_on_changes=list(request.replaceOnChanges),
            additional_secret_outputs=list(request.additionalSecretOutputs),
            aliases=list(request.aliasURNs),
            import_id=request.importId,
            retain_on_delete=request.retainOnDelete,
        )
        result = self.deployment.register(reg)
        return resource_pb2.RegisterResourceResponse(urn=result.urn, id=result.id, object=to_struct(result.outputs))

    @_as_exception
    def RegisterResourceOutputs(self, request: Any) -> Any:
        self.deployment.register_outputs(request.urn, from_struct(request.outputs))
        return empty_pb2.Empty()

    @_as_exception
    def ReadResource(self, request: Any) -> Any:
        reg = Registration(
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=True,
            inputs=from_struct(request.properties),
            provider=request.provider,
            version=request.version,
            dependencies=list(request.dependencies),
            additional_secret_outputs=list(request.additionalSecretOutputs),
        )
        result = self.deployment.read(reg, request.id)
        return resource_pb2.ReadResourceResponse(urn=result.urn, properties=to_struct(result.outputs))

    @_as_exception
    def Invoke(self, request: Any) -> Any:
        result = self.deployment.invoke(request.tok, from_struct(request.args), request.provider)
        return resource_pb2.ResourceInvokeResponse(**{"return": to_struct(result)})

    def RegisterStackTransform(self, request: Any) -> Any:
        return empty_pb2.Empty()

    def RegisterStackInvokeTransform(self, request: Any) -> Any:
        return empty_pb2.Empty()

    def RegisterResourceHook(self, request: Any) -> Any:
        return empty_pb2.Empty()

    def SignalAndWaitForShutdown(self, request: Any) -> Any:
        return empty_pb2.Empty()


_LEVELS = {engine_pb2.DEBUG: "debug", engine_pb2.INFO: "info", engine_pb2.WARNING: "warning", engine_pb2.ERROR: "error"}


class EngineLog:
    """The SDK's `engine` object: `pulumi.log.*` calls from programs become diagnostic events."""

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter
        self.errors: list[str] = []

    def Log(self, request: Any) -> Any:
        level = _LEVELS.get(request.severity, "info")
        if level == "error":
            self.errors.append(request.message)
        if level != "debug":
            self.emitter.emit("diagnostic", request.message, level=level, urn=request.urn or None)
        return empty_pb2.Empty()

    def GetRootResource(self, request: Any) -> Any:
        return engine_pb2.GetRootResourceResponse(urn="")

    def SetRootResource(self, request: Any) -> Any:
        return engine_pb2.SetRootResourceResponse()
