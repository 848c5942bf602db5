"""Offerings as loaded from `catalog/*.yaml`. Offerings are data; nothing here names one."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator import quota
from orchestrator.actors import Role
from orchestrator.policy import STAGE_VOTES

BackupTier = Literal["none", "standard", "critical"]


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str
    description: str = ""
    sizes: dict[str, int | str] = Field(
        default_factory=dict, description="What the stack program builds: flavors, disk sizes, counts."
    )
    quota_cost: dict[str, int] = Field(description="What one order of this plan takes from the quota.")
    price_riel_per_month: int = Field(
        ge=0, description="What a service on this plan costs its ministry per month, in riel (cost showback)."
    )

    @field_validator("quota_cost")
    @classmethod
    def _known_resources(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = set(value) - set(quota.RESOURCES)
        if unknown:
            raise ValueError(f"unknown quota resource(s) {sorted(unknown)}; known: {list(quota.RESOURCES)}")
        if any(v < 0 for v in value.values()):
            raise ValueError("quota costs cannot be negative")
        return value


class ApprovalPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stages: list[Role] = Field(
        min_length=1, description="Roles that must approve, in order; any rejection ends the request."
    )
    timeout_hours: int = Field(default=72, ge=1, description="Undecided requests expire after this.")

    @field_validator("stages")
    @classmethod
    def _approving_roles(cls, value: list[Role]) -> list[Role]:
        allowed = set(STAGE_VOTES)  # roles the policy lets vote on a stage
        wrong = [r for r in value if r not in allowed]
        if wrong:
            raise ValueError(f"roles {[r.value for r in wrong]} cannot approve; use {sorted(r.value for r in allowed)}")
        return value


class Offering(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    version: int = Field(ge=1)
    title: str
    description: str
    category: str = "general"
    stack_program: str = Field(description="Module under `stacks/` that builds the service.")
    playbooks: list[str] = Field(default_factory=list, description="Playbooks run after the stack is up.")
    day2_playbooks: dict[str, str] = Field(default_factory=dict)
    health_check: dict[str, Any] = Field(default_factory=dict)
    secrets: list[str] = Field(
        default_factory=list, description="Secrets generated once per service and given to its playbooks."
    )
    credentials: list[str] = Field(
        default_factory=list, description="Which of `secrets` the ministry is shown, once (e.g. an admin password)."
    )
    tls_names_from: list[str] = Field(
        default_factory=list,
        description="Parameters naming the service (a name or a list of names): its certificate covers them.",
    )
    tls_name_prefixes: list[str] = Field(
        default_factory=list,
        description=(
            "When given, the certificate covers `<prefix>.<name>` for each prefix and each name of "
            "`tls_names_from` (e.g. `mail.` and `mta-sts.` of a mail domain) instead of the names themselves."
        ),
    )
    mail_domain_from: str | None = Field(
        default=None,
        description=(
            "The parameter naming the service's mail domain: the service keeps mailboxes, aliases and DKIM keys."
        ),
    )
    rack_devices_from: str | None = Field(
        default=None,
        description=(
            "The parameter listing devices to rack in the data centre (co-location): placed in the DCIM at "
            "approval, installed by technicians from a work order, removed the same way."
        ),
    )
    image_role: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9]{0,15}$",
        description=(
            "The baked image its servers boot from (`playbooks/image_<role>.yml`, built by `tonle images build`); "
            "none, or none built from the current install phase: the base image."
        ),
    )
    backup_tier: BackupTier = "none"
    s3_bucket: bool = Field(
        default=False,
        description=(
            "The service is a bucket at the DR site for the ministry's own tools: the orchestrator makes it, "
            "with an S3 credential worth that bucket only, and hands out `endpoints.bucket`, "
            "`endpoints.s3_endpoint`, `endpoints.s3_region` and `credentials.s3_access_key_id`, "
            "`credentials.s3_secret_access_key`."
        ),
    )
    backup_retention: dict[str, int] = Field(
        default_factory=lambda: {"daily": 7, "weekly": 4, "monthly": 6},
        description="restic snapshots kept per period (daily, weekly, monthly).",
    )
    dr_tier: BackupTier = "none"
    approval: ApprovalPolicy
    plans: list[Plan] = Field(min_length=1)
    parameters: dict[str, Any] = Field(description="JSON Schema of the order's parameters.")
    orderable: bool = Field(
        default=True,
        description="False while the offering names parts that do not exist yet; orders are refused (409).",
    )
    not_orderable_reason: str = Field(
        default="", description="What is missing, said to whoever tries to order; required when not orderable."
    )

    @model_validator(mode="after")
    def _reason_for_not_orderable(self) -> "Offering":
        if not self.orderable and not self.not_orderable_reason.strip():
            raise ValueError("an offering that is not orderable must say why (`not_orderable_reason`)")
        if self.orderable and self.not_orderable_reason:
            raise ValueError("`not_orderable_reason` is only for offerings with `orderable: false`")
        return self

    @model_validator(mode="after")
    def _mail_domain_is_a_parameter(self) -> "Offering":
        properties = self.parameters.get("properties") or {}
        if self.mail_domain_from is not None and not isinstance(properties.get(self.mail_domain_from), dict):
            raise ValueError(f"mail_domain_from: '{self.mail_domain_from}' is not a parameter of the offering")
        return self

    @model_validator(mode="after")
    def _rack_devices_are_a_parameter(self) -> "Offering":
        properties = self.parameters.get("properties") or {}
        devices = properties.get(self.rack_devices_from) if self.rack_devices_from is not None else None
        if self.rack_devices_from is not None and not (isinstance(devices, dict) and devices.get("type") == "array"):
            raise ValueError(f"rack_devices_from: '{self.rack_devices_from}' is not an array parameter of the offering")
        return self

    @model_validator(mode="after")
    def _credentials_are_secrets(self) -> "Offering":
        unknown = sorted(set(self.credentials) - set(self.secrets))
        if unknown:
            raise ValueError(f"credentials {unknown} are not among the offering's secrets")
        return self

    @model_validator(mode="after")
    def _unique_plans(self) -> "Offering":
        ids = [p.id for p in self.plans]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate plan ids: {dupes}")
        return self

    def plan(self, plan_id: str) -> Plan | None:
        return next((p for p in self.plans if p.id == plan_id), None)


class PlanPublic(BaseModel):
    id: str
    title: str
    description: str
    sizes: dict[str, int | str]
    quota_cost: dict[str, int]
    price_riel_per_month: int


class OfferingSummary(BaseModel):
    id: str
    version: int
    title: str
    description: str
    category: str
    backup_tier: BackupTier
    dr_tier: BackupTier
    plans: list[PlanPublic]
    approval_stages: list[Role]
    orderable: bool
    not_orderable_reason: str

    @classmethod
    def of(cls, offering: Offering) -> "OfferingSummary":
        return cls(
            id=offering.id,
            version=offering.version,
            title=offering.title,
            description=offering.description,
            category=offering.category,
            backup_tier=offering.backup_tier,
            dr_tier=offering.dr_tier,
            plans=[PlanPublic.model_validate(p.model_dump()) for p in offering.plans],
            approval_stages=offering.approval.stages,
            orderable=offering.orderable,
            not_orderable_reason=offering.not_orderable_reason,
        )


class OfferingPublic(OfferingSummary):
    parameters: dict[str, Any]
    approval_timeout_hours: int

    @classmethod
    def of(cls, offering: Offering) -> "OfferingPublic":
        return cls(
            **OfferingSummary.of(offering).model_dump(),
            parameters=offering.parameters,
            approval_timeout_hours=offering.approval.timeout_hours,
        )
