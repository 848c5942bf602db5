"""Single sign-on: who an OpenID Connect sign-in is in Tonle.

The identity provider's claims decide the user's role, ministry and name at every sign-in (the
provider is the source of truth for people; Tonle keeps a row per person for audit and tokens).
Every claim value is hostile input: it is checked against what Tonle accepts and never trusted
to be well-formed, and the automation role (service accounts) is never granted this way.
"""

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from orchestrator import policy
from orchestrator.actors import PLATFORM_ROLES, Actor, Role
from orchestrator.audit import service as audit
from orchestrator.auth.models import User
from orchestrator.config import Settings
from orchestrator.errors import PermissionDenied
from orchestrator.ministry import service as ministries

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MINISTRY_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
MAX_SUBJECT = 512
MAX_FULL_NAME = 200
# Room for "-" and a short digest when the wanted username belongs to someone else.
_SUFFIX_LENGTH = 9
_NOT_USERNAME_CHARS = re.compile(r"[^a-z0-9._-]+")
# Who changes a user in the audit log when the identity provider's claims do.
SSO_ACTOR = Actor(user_id=None, username="single-sign-on", role=None, ministry_id=None)


class SsoRefused(PermissionDenied):
    """This sign-in cannot become a Tonle user. `message` is the English text with `{name}`
    placeholders (the console translates it); `params` fill them."""

    title = "Single sign-on refused"

    def __init__(self, message: str, **params: str) -> None:
        super().__init__(message.format(**params))
        self.message = message
        self.params = params


@dataclass(frozen=True)
class SsoIdentity:
    subject: str  # `<issuer>|<sub>`: the provider's subject is unique only at that provider
    username: str
    full_name: str
    role: Role
    ministry_code: str | None


def identity_from_claims(
    *, issuer: str, claims: Mapping[str, Any], role_claim: str, ministry_claim: str
) -> SsoIdentity:
    """Map verified ID-token/userinfo claims to a Tonle identity, or refuse with a clear reason."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or not sub.isprintable() or len(sub) > 255:
        raise SsoRefused("The identity provider sent no usable subject (sub).")
    subject = f"{issuer}|{sub}"
    if len(subject) > MAX_SUBJECT:
        raise SsoRefused("The identity provider sent no usable subject (sub).")
    role = _role(claims.get(role_claim), claim=role_claim)
    ministry_code = _ministry_code(claims.get(ministry_claim), role=role, claim=ministry_claim)
    return SsoIdentity(
        subject=subject,
        username=_username(claims.get("preferred_username"), subject=subject),
        full_name=_full_name(claims.get("name")),
        role=role,
        ministry_code=ministry_code,
    )


def _role(value: object, *, claim: str) -> Role:
    if value is None or value == "":
        raise SsoRefused("The identity provider did not say which Tonle role you have (claim {claim}).", claim=claim)
    if not isinstance(value, str) or value not in Role.__members__:
        raise SsoRefused("The role your identity provider gave (claim {claim}) is not a Tonle role.", claim=claim)
    role = Role(value)
    if role == Role.automation:
        # Service accounts act through API tokens an admin issues; a person never becomes one.
        raise SsoRefused("The automation role cannot sign in through single sign-on.")
    return role


def _ministry_code(value: object, *, role: Role, claim: str) -> str | None:
    blank = value is None or value == ""
    if role in PLATFORM_ROLES:
        if not blank:
            raise SsoRefused(
                "The role {role} belongs to the data centre, not a ministry, but a ministry was given (claim {claim}).",
                role=role.value,
                claim=claim,
            )
        return None
    if blank:
        raise SsoRefused(
            "The role {role} needs a ministry, and none was given (claim {claim}).", role=role.value, claim=claim
        )
    if not isinstance(value, str) or not MINISTRY_CODE.fullmatch(value):
        raise SsoRefused(
            "The ministry your identity provider gave (claim {claim}) is not a ministry code.", claim=claim
        )
    return value


def _username(value: object, *, subject: str) -> str:
    """`preferred_username` made to fit Tonle's usernames; when nothing usable is left, one
    derived from the subject (stable: the same person always gets the same name)."""
    if isinstance(value, str) and len(value) <= 256:
        folded = unicodedata.normalize("NFKC", value).strip().casefold()
        candidate = _NOT_USERNAME_CHARS.sub("-", folded).lstrip("._-")[: 64 - _SUFFIX_LENGTH].rstrip("._-")
        if USERNAME.fullmatch(candidate):
            return candidate
    return "sso-" + hashlib.sha256(subject.encode()).hexdigest()[:16]


def _full_name(value: object) -> str:
    if not isinstance(value, str):
        return ""
    printable = "".join(c for c in unicodedata.normalize("NFC", value) if c.isprintable())
    return " ".join(printable.split())[:MAX_FULL_NAME]


def user_for_claims(*, session: Session, issuer: str, claims: Mapping[str, Any], settings: Settings) -> User:
    """The user this verified sign-in is: created on first sign-in, brought in line with the
    claims (role, ministry, name) on every one after, each change audited. The caller commits."""
    identity = identity_from_claims(
        issuer=issuer, claims=claims, role_claim=settings.oidc_role_claim, ministry_claim=settings.oidc_ministry_claim
    )
    ministry_id: uuid.UUID | None = None
    if identity.ministry_code is not None:
        ministry = ministries.get_by_code(session=session, code=identity.ministry_code)
        if ministry is None:
            raise SsoRefused(
                "Tonle has no ministry with the code your identity provider gave ({code}).", code=identity.ministry_code
            )
        ministry_id = ministry.id
    policy.check_account(role=identity.role, ministry_id=ministry_id, platform_wide=False)
    user = session.exec(select(User).where(User.oidc_subject == identity.subject)).first()
    if user is None:
        created = _create(session=session, identity=identity, ministry_id=ministry_id)
        if created is not None:
            return created
        # The same person's first sign-in in another browser created the row a moment ago.
        user = session.exec(select(User).where(User.oidc_subject == identity.subject)).one()
    if not user.active:
        raise SsoRefused("Your Tonle account has been deactivated. Ask the platform administrators.")
    _update(session=session, user=user, identity=identity, ministry_id=ministry_id)
    return user


def _create(*, session: Session, identity: SsoIdentity, ministry_id: uuid.UUID | None) -> User | None:
    """The new user, or None when a concurrent sign-in of the same subject created it first."""
    username = identity.username
    # The wanted name may be a local account's (or another provider's user's): never take it over.
    if session.exec(select(User.id).where(User.username == username)).first() is not None:
        username = f"{username}-{hashlib.sha256(identity.subject.encode()).hexdigest()[: _SUFFIX_LENGTH - 1]}"
    user = User(
        username=username,
        full_name=identity.full_name,
        role=identity.role,
        ministry_id=ministry_id,
        oidc_subject=identity.subject,
    )
    try:
        # A savepoint: losing the race must not spoil the caller's transaction.
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        if session.exec(select(User.id).where(User.oidc_subject == identity.subject)).first() is None:
            raise
        return None
    audit.record(
        session=session,
        actor=SSO_ACTOR,
        entity="user",
        entity_id=user.id,
        ministry_id=user.ministry_id,
        action="created",
        detail={"username": user.username, "role": user.role, "oidc_subject": identity.subject},
    )
    return user


def _update(*, session: Session, user: User, identity: SsoIdentity, ministry_id: uuid.UUID | None) -> None:
    if user.role != identity.role:
        audit.record(
            session=session,
            actor=SSO_ACTOR,
            entity="user",
            entity_id=user.id,
            ministry_id=ministry_id or user.ministry_id,
            action="role_changed",
            from_state=user.role,
            to_state=identity.role,
            detail={"username": user.username},
        )
        user.role = identity.role
    if user.ministry_id != ministry_id:
        # Both ministries see the move: the one losing the user and the one gaining them.
        for seen_by in {user.ministry_id, ministry_id}:
            audit.record(
                session=session,
                actor=SSO_ACTOR,
                entity="user",
                entity_id=user.id,
                ministry_id=seen_by,
                action="ministry_changed",
                detail={"username": user.username, "from": user.ministry_id, "to": ministry_id},
            )
        user.ministry_id = ministry_id
    if user.full_name != identity.full_name:
        audit.record(
            session=session,
            actor=SSO_ACTOR,
            entity="user",
            entity_id=user.id,
            ministry_id=ministry_id,
            action="full_name_changed",
            detail={"username": user.username, "from": user.full_name, "to": identity.full_name},
        )
        user.full_name = identity.full_name
    session.add(user)
