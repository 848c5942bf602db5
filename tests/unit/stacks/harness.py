"""Runs a stack program under Pulumi's own mocks and records what it declared.

The mocks stand in for the cloud (the boundary these tests are not about): they answer every
registration with its inputs plus the few outputs a real provider would add (addresses, ids,
S3 keys), and every lookup with a predictable id. Each run gets a fresh context and event loop,
so the SDK's global state never leaks from one program to the next.
"""

import asyncio
import base64
import contextvars
import importlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import get_root_resource
from pulumi.runtime.stack import run_pulumi_func

from orchestrator.catalog.loader import offering_files
from orchestrator.mail.dns_records import mta_sts_policy_id

CATALOG = Path(__file__).resolve().parents[3] / "catalog"

MINISTRY = "health"
SERVICE_ID = str(uuid.UUID("6f1c2a4e-0d3b-4c55-9e21-7a8b9c0d1e2f"))
REQUEST_ID = str(uuid.UUID("0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b"))
MANAGEMENT_CIDR = "10.20.0.0/24"
SSH_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBnJHq2 tonle-service"
EXTERNAL_NETWORK = "public"
MOCK_S3_SECRET = "mock-s3-secret-never-in-the-clear"
MAIL_DKIM_SELECTOR = "tonle202611"
#: As long as a 2048-bit key's `p=` value (392 characters), so its TXT record must be split.
MAIL_DKIM_PUBLIC_KEY = base64.b64encode(bytes(range(256)) + bytes(38)).decode()
MAIL_MTA_STS_UNTIL = "2099-01-01T00:00:00+00:00"


def mock_floating_address(logical_name: str) -> str:
    return f"172.24.4.{10 + _small_number(logical_name)}"


def mock_fixed_address(logical_name: str) -> str:
    return f"10.100.7.{10 + _small_number(logical_name)}"


def mock_lookup_id(kind: str, name: str) -> str:
    return f"{kind}-id-{name}"


def _small_number(text: str) -> int:
    return sum(text.encode()) % 200


@dataclass(frozen=True)
class Registered:
    type: str
    name: str  # the logical name (the last part of the URN)
    inputs: dict[str, Any]


@dataclass(frozen=True)
class Options:
    """The resource options a registration carried, as an engine receives them."""

    urn: str
    delete_before_replace: bool
    ignore_changes: tuple[str, ...]
    dependencies: tuple[str, ...]  # URNs


@dataclass(frozen=True)
class Invoked:
    token: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Exported:
    value: Any
    secret: bool


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, *, preview: bool = False) -> None:
        self.preview = preview
        self.resources: list[Registered] = []
        self.invokes: list[Invoked] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        self.resources.append(Registered(type=args.typ, name=args.name, inputs=dict(args.inputs)))
        if self.preview:
            # As an engine answers a create in preview: no id, and nothing the cloud computes.
            return "", dict(args.inputs)
        return f"{args.name}-id", {**args.inputs, **_provider_outputs(args.typ, args.name, args.inputs)}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        self.invokes.append(Invoked(token=args.token, args=dict(args.args)))
        kind = args.token.rsplit(":", 1)[-1].removeprefix("get").lower()
        name = str(args.args.get("name", ""))
        return {"id": mock_lookup_id(kind, name), "name": name}, []


class RecordingMonitor(MockMonitor):
    """Pulumi's mock monitor, also keeping each registration's options (the mocks never see them)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.options: dict[tuple[str, str], Options] = {}

    def RegisterResource(self, request: Any) -> Any:  # the protocol names it so
        response = super().RegisterResource(request)
        self.options[(request.type, request.name)] = Options(
            urn=response.urn,
            delete_before_replace=bool(request.deleteBeforeReplace),
            ignore_changes=tuple(request.ignoreChanges),
            dependencies=tuple(request.dependencies),
        )
        return response


def _provider_outputs(type_token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """What the OpenStack provider computes on create, as far as the programs read it."""
    if type_token == "openstack:networking/port:Port":
        return {"allFixedIps": [mock_fixed_address(name)]}
    if type_token == "openstack:networking/floatingIp:FloatingIp":
        return {"address": mock_floating_address(name)}
    if type_token == "openstack:networking/subnet:Subnet":
        return {"cidr": "10.100.7.0/24", "gatewayIp": "10.100.7.1"}
    if type_token == "openstack:compute/volumeAttach:VolumeAttach":
        return {"device": "/dev/vdb"}
    if type_token == "openstack:identity/ec2CredentialV3:Ec2CredentialV3":
        return {"access": "mock-s3-access", "secret": MOCK_S3_SECRET}
    return {}


@dataclass
class Run:
    resources: list[Registered]
    invokes: list[Invoked]
    options: dict[tuple[str, str], Options]
    outputs: dict[str, Exported] = field(default_factory=dict)

    def options_of(self, resource: Registered) -> Options:
        return self.options[(resource.type, resource.name)]

    def of_type(self, type_token: str) -> list[Registered]:
        return [resource for resource in self.resources if resource.type == type_token]

    def named(self, logical_name: str) -> Registered:
        matches = [resource for resource in self.resources if resource.name == logical_name]
        assert len(matches) == 1, f"expected one resource named {logical_name}, found {len(matches)}"
        return matches[0]

    def type_tokens(self) -> set[str]:
        return {resource.type for resource in self.resources}

    def invoke_tokens(self) -> set[str]:
        return {invoke.token for invoke in self.invokes}


STACK = "health-test-6f1c2a4e"


def run_program(program: Callable[[], None], config: dict[str, str]) -> Run:
    return contextvars.Context().run(_run_in_fresh_context, program, config, False)


def run_preview(program: Callable[[], None], config: dict[str, str]) -> Run:
    return contextvars.Context().run(_run_in_fresh_context, program, config, True)


def _run_in_fresh_context(program: Callable[[], None], config: dict[str, str], preview: bool) -> Run:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi.runtime.set_all_config(config)
        mocks = RecordingMocks(preview=preview)
        monitor = RecordingMonitor(mocks)
        pulumi.runtime.set_mocks(mocks, project="tonle", stack=STACK, preview=preview, monitor=monitor)
        run = Run(resources=mocks.resources, invokes=mocks.invokes, options=monitor.options)

        async def body() -> None:
            program()
            root = get_root_resource()
            assert root is not None
            for name, value in getattr(root, "outputs", {}).items():
                output = pulumi.Output.from_input(value)
                run.outputs[name] = Exported(value=await output.future(), secret=await output.is_secret())

        loop.run_until_complete(run_pulumi_func(body))
        return run
    finally:
        loop.close()
        asyncio.set_event_loop(None)


@dataclass(frozen=True)
class Case:
    """One offering's example order on one of its plans."""

    offering: dict[str, Any]
    plan: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.offering['id']}/{self.plan['id']}"

    def program(self) -> Callable[[], None]:
        """The offering's stack program (`stacks.<stack_program>.program`)."""
        module = importlib.import_module(f"stacks.{self.offering['stack_program']}")
        program: Callable[[], None] = module.program
        return program

    @property
    def sizes(self) -> dict[str, Any]:
        return dict(self.plan["sizes"])

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.offering["parameters"]["examples"][0])

    def config(self, **overrides: Any) -> dict[str, str]:
        values: dict[str, Any] = {
            "ministry": MINISTRY,
            "serviceId": SERVICE_ID,
            "requestId": REQUEST_ID,
            "offering": self.offering["id"],
            "plan": self.plan["id"],
            "sizes": self.sizes,
            "parameters": self.parameters,
            "site": "primary",
            "externalNetwork": EXTERNAL_NETWORK,
            "managementCidr": MANAGEMENT_CIDR,
            "image": "debian-12",
            "subnetPool": "tenant-pool",
            "sshPublicKey": SSH_PUBLIC_KEY,
        }
        mail_domain_from = self.offering.get("mail_domain_from")
        if mail_domain_from:
            # What the orchestrator projects for a mail offering (orchestrator/workflows/inputs.py).
            domain = str(self.parameters[mail_domain_from])
            values["mail"] = {
                "domain": domain,
                "dkimSelector": MAIL_DKIM_SELECTOR,
                "dkimPublicKey": MAIL_DKIM_PUBLIC_KEY,
                "mtaStsPolicyId": mta_sts_policy_id(domain),
                "mtaStsUntil": MAIL_MTA_STS_UNTIL,
            }
        values.update(overrides)
        return {f"tonle:{key}": v if isinstance(v, str) else json.dumps(v) for key, v in values.items()}


def load_offerings() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in offering_files(CATALOG)]


def every_case() -> list[Case]:
    return [Case(offering=offering, plan=plan) for offering in load_offerings() for plan in offering["plans"]]
