"""Every table model, imported so SQLModel.metadata knows them all (migrations, tests)."""

from sqlmodel import SQLModel

from orchestrator.audit.models import AuditEntry
from orchestrator.auth.models import ApiToken, User
from orchestrator.backup.models import BackupPolicy, RestorePoint
from orchestrator.dr.campaign_models import DrCampaign, DrCampaignDrill
from orchestrator.dr.models import DrReport
from orchestrator.images.models import BakedImage
from orchestrator.mail.models import MailAlias, Mailbox, MailDomain
from orchestrator.ministry.models import Ministry
from orchestrator.operations.models import Event, Operation
from orchestrator.pki.models import CertificateAuthority
from orchestrator.requests.models import Approval, Request
from orchestrator.services.models import Service, ServiceUpload

metadata = SQLModel.metadata

__all__ = [
    "ApiToken",
    "Approval",
    "AuditEntry",
    "BackupPolicy",
    "BakedImage",
    "CertificateAuthority",
    "DrCampaign",
    "DrCampaignDrill",
    "DrReport",
    "Event",
    "MailAlias",
    "MailDomain",
    "Mailbox",
    "Ministry",
    "Operation",
    "Request",
    "RestorePoint",
    "Service",
    "ServiceUpload",
    "User",
    "metadata",
]
