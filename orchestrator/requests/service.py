"""Ordering, approving, cancelling and expiring requests."""

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from orchestrator import policy, quota
from orchestrator.actors import Actor, Role
from orchestrator.audit import service as audit
from orchestrator.catalog import service as catalog
from orchestrator.catalog.models import Offering, Plan
from orchestrator.database.columns import utcnow
from orchestrator.database.queries import locked, page
from orchestrator.database.rows import new_row
from orchestrator.database.unit_of_work import UnitOfWork
from orchestrator.dcim import service as colocation
from orchestrator.errors import Conflict, InvalidInput, NotFound, PermissionDenied, QuotaExceeded
from orchestrator.mail import domain as mail_domain
from orchestrator.ministry import domains
from orchestrator.ministry import service as ministries
from orchestrator.operations import service as operations
from orchestrator.operations.models import OperationKind
from orchestrator.requests import placement
from orchestrator.requests.models import (
    DR_MOVES,
    Approval,
    ApprovalCreate,
    Decision,
    Request,
    RequestCreate,
    RequestKind,
    RequestPublic,
    RequestStatus,
)
from orchestrator.requests.states import REQUEST_STATES
from orchestrator.services import service as services
from orchestrator.services.models import Service, ServiceStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    request: RequestPublic
    created: bool  # False when an idempotent retry returned the original


def body_digest(body: dict[str, Any]) -> str:
    """The request's `fingerprint`: a hash of what was asked, the same for the same body."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def fingerprint(data: RequestCreate, ministry_id: uuid.UUID) -> str:
    """An order's digest: a retry under its Idempotency-Key must carry the same one."""
    return body_digest(
        {
            "ministry_id": str(ministry_id),
            "offering_id": data.offering_id,
            "plan": data.plan,
            "parameters": data.parameters,
            "justification": data.justification,
        }
    )


_REQUEST = Request.__table__  # type: ignore[attr-defined]
_EARLIER_ORDER = sa.select(_REQUEST.c.id, _REQUEST.c.fingerprint).where(
    _REQUEST.c.ministry_id == sa.bindparam("ministry_id"), _REQUEST.c.idempotency_key == sa.bindparam("key")
)


@dataclass(frozen=True)
class _Order:
    """A checked order, ready to write: its request row, audit entry and quota cost."""

    offering: Offering
    plan: Plan
    request: dict[str, Any]
    audit_entry: dict[str, Any]
    names: list[tuple[str, str]]  # (field, DNS name) the ministry must own
    mailbox_cost: dict[str, int]  # the initial mailboxes' part of the cost, charged after the plan's
    seen_suffixes: list[str] | None  # the ministry's, as this process last read them under its lock

    @property
    def ministry_id(self) -> uuid.UUID:
        return cast(uuid.UUID, self.request["ministry_id"])

    @property
    def cost(self) -> dict[str, int]:
        return cast(dict[str, int], self.request["quota_cost"])

    @property
    def fingerprint(self) -> str:
        return cast(str, self.request["fingerprint"])


def submit(*, uow: UnitOfWork, actor: Actor, data: RequestCreate, idempotency_key: str | None = None) -> Submission:
    """Open an order and commit it with its quota charge and audit entry; or, under an
    Idempotency-Key the ministry used before, answer with that order and write nothing."""
    policy.require(actor, policy.Action.order)
    order = _checked_order(actor=actor, data=data, idempotency_key=idempotency_key)
    # The quick way, when the order's checks need nothing from the database but the ministry's
    # suffixes as this process last saw them: one statement, sent alone (see `placement`). Any
    # refusal is left to the locked way, which answers a replayed Idempotency-Key first.
    reason = _why_not_quick(order)
    if reason is None:
        assert order.seen_suffixes is not None  # as _why_not_quick checked
        submission = _place(uow=uow, order=order, dns_suffixes=order.seen_suffixes, key=idempotency_key)
        if submission is not None:
            return submission
        reason = "the charge's guard refused it (quota short, or the suffixes changed)"
    log.debug("order %s is checked under ministry %s's lock: %s", order.request["id"], order.ministry_id, reason)
    return _submit_under_lock(uow=uow, order=order, key=idempotency_key)


def _why_not_quick(order: _Order) -> str | None:
    """Why the order cannot be one statement on the suffixes seen, or None when it can."""
    if order.seen_suffixes is None:
        return "this process has not seen the ministry's DNS suffixes yet"
    if not order.offering.orderable:
        return "its offering is not orderable"
    if colocation.checks_at_order(order.offering):
        return "its devices are checked against the DCIM"
    if domains.outside(order.names, order.seen_suffixes):
        return "its names are outside the suffixes last seen"
    return None


def _checked_order(*, actor: Actor, data: RequestCreate, idempotency_key: str | None) -> _Order:
    """The order's own checks (the input's, the catalogue's), and what it would write."""
    ministry_id = _ordering_ministry(actor, data.ministry_id)
    offering = catalog.get_offering(data.offering_id)
    plan = catalog.get_plan(offering, data.plan)
    catalog.validate_parameters(offering, data.parameters)
    mailboxes = mail_domain.check_order(offering=offering, plan=plan, parameters=data.parameters)
    colocation.check_request(offering=offering, parameters=data.parameters, sizes=plan.sizes)
    # The `mailboxes` quota counts the mailboxes there are, not the most the plan allows.
    mailbox_cost = mail_domain.mailbox_cost(len(mailboxes)) if mailboxes else {}
    cost = dict(plan.quota_cost)
    for name, amount in mailbox_cost.items():
        cost[name] = cost.get(name, 0) + amount
    request = new_row(
        Request,
        **_request_values(
            actor=actor,
            offering=offering,
            ministry_id=ministry_id,
            plan_id=plan.id,
            parameters=data.parameters,
            justification=data.justification,
            quota_cost=cost,
            digest=fingerprint(data, ministry_id),
            idempotency_key=idempotency_key,
        ),
    )
    audit_entry = audit.entry(
        **_opened(
            actor=actor,
            request_id=request["id"],
            ministry_id=ministry_id,
            detail={"offering": offering.id, "plan": plan.id, "quota_cost": cost},
        )
    )
    names = catalog.dns_names(offering, data.parameters)
    return _Order(offering, plan, request, audit_entry, names, mailbox_cost, ministries.suffixes_seen(ministry_id))


def _submit_under_lock(*, uow: UnitOfWork, order: _Order, key: str | None) -> Submission:
    """The order checked against the ministry's row under its lock, which says why it is refused."""
    session = uow.session
    if key is not None:
        earlier = _replay(uow=uow, order=order, key=key)
        if earlier is not None:
            return earlier
    colocation.check_order(
        session=session, offering=order.offering, ministry_id=order.ministry_id, parameters=order.request["parameters"]
    )
    # Last, the ministry's row lock, held until the commit: it serialises the ministry's quota
    # moves, so no two orders overcommit, and a DNS suffix change, so every name is checked
    # against the suffixes the order commits beside.
    account = ministries.lock_account(session=session, ministry_id=order.ministry_id)
    ministries.check_dns_names(suffixes=account.dns_suffixes, names=order.names)
    catalog.require_orderable(offering=order.offering)  # after the input checks: a bad order still gets its 422
    ministries.check_charge(account=account, cost=order.plan.quota_cost)
    if order.mailbox_cost:
        after_plan = replace(account, used=quota.add(account.used, order.plan.quota_cost))
        try:
            ministries.check_charge(account=after_plan, cost=order.mailbox_cost)
        except QuotaExceeded as exceeded:
            field = f"parameters.{mail_domain.INITIAL_MAILBOXES}"
            raise QuotaExceeded(exceeded.detail, field=field, **exceeded.extra) from None
    submission = _place(uow=uow, order=order, dns_suffixes=account.dns_suffixes, key=key)
    if submission is None:
        # Under the lock the guard sees what the checks above saw: if it refuses, the two rules differ.
        raise RuntimeError(f"the quota guard refused order {order.request['id']} that quota.shortfall accepted")
    return submission


def _place(*, uow: UnitOfWork, order: _Order, dns_suffixes: Sequence[str], key: str | None) -> Submission | None:
    """Write and commit the order; None when the charge's guard refused it (nothing written)."""
    statement = placement.parameters(
        request=order.request, audit_entry=order.audit_entry, dns_suffixes=dns_suffixes, cost=order.cost
    )
    try:
        rows = uow.commit_with(placement.PLACE_ORDER, statement)
    except IntegrityError as error:
        if key is None or not placement.reuses_a_key(error):
            raise
        # The ministry's order under this key committed (perhaps beside this one, waited for).
        earlier = _replay(uow=uow, order=order, key=key)
        assert earlier is not None  # the key's unique constraint refused the insert
        return earlier
    if not placement.placed(rows, order.request["id"]):
        return None
    audit.announce(order.audit_entry)
    return Submission(request=RequestPublic.model_validate(order.request), created=True)


def _replay(*, uow: UnitOfWork, order: _Order, key: str) -> Submission | None:
    """The replay of the ministry's committed order under this Idempotency-Key, if there is one
    (the unit of work's read ended); 422 when this order's body differs from that one's."""
    session = uow.session
    earlier = session.connection().execute(_EARLIER_ORDER, {"ministry_id": order.ministry_id, "key": key}).first()
    if earlier is None:
        return None
    if earlier.fingerprint != order.fingerprint:
        raise InvalidInput("this Idempotency-Key was used for a different request body", field="Idempotency-Key")
    replayed = Submission(request=RequestPublic.model_validate(session.get(Request, earlier.id)), created=False)
    uow.commit()
    return replayed


def get(*, session: Session, actor: Actor, request_id: uuid.UUID) -> Request:
    request = session.get(Request, request_id)
    if request is None or not policy.can_see(actor, request.ministry_id):
        # Another ministry's request is indistinguishable from a missing one.
        raise NotFound(f"request {request_id} not found")
    return request


def list_requests(
    *,
    session: Session,
    actor: Actor,
    status: RequestStatus | None = None,
    offering_id: str | None = None,
    ministry_id: uuid.UUID | None = None,
    awaiting_role: Role | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[Request], int]:
    query = select(Request)
    if not policy.sees_all_ministries(actor):
        query = query.where(Request.ministry_id == actor.ministry_id)
    if ministry_id is not None:
        query = query.where(Request.ministry_id == ministry_id)
    if status is not None:
        query = query.where(Request.status == status)
    if offering_id is not None:
        query = query.where(Request.offering_id == offering_id)
    if awaiting_role is not None:
        stage_role = col(Request.approval_stages).op("->>")(col(Request.next_stage))
        query = query.where(Request.status == RequestStatus.pending_approval, stage_role == awaiting_role.value)
    return page(session, query, col(Request.created_at).desc(), col(Request.id), limit=limit, offset=offset)


def approvals_of(*, session: Session, actor: Actor, request_id: uuid.UUID) -> Sequence[Approval]:
    get(session=session, actor=actor, request_id=request_id)
    return session.exec(select(Approval).where(Approval.request_id == request_id).order_by(col(Approval.stage))).all()


def cancel(*, session: Session, actor: Actor, request_id: uuid.UUID, reason: str = "") -> Request:
    request = _locked(session=session, actor=actor, request_id=request_id)
    policy.require(actor, policy.Action.cancel_request, ministry_id=request.ministry_id)
    _transition(
        session=session, actor=actor, request=request, target=RequestStatus.cancelled, detail={"reason": reason}
    )
    _release_quota(session=session, request=request)
    return request


def vote(*, session: Session, actor: Actor, request_id: uuid.UUID, data: ApprovalCreate) -> Request:
    peek = session.get(Request, request_id)
    if peek is not None and peek.kind != RequestKind.order and peek.service_id is not None:
        # Service before request, the order every day-2 action locks in: no deadlock with a decommission.
        services.lock(session=session, service_id=peek.service_id)
    request = _locked(session=session, actor=actor, request_id=request_id)
    if request.status != RequestStatus.pending_approval:
        REQUEST_STATES.check(request.status, RequestStatus.approved)  # raises with the current state
    stage_role = request.approval_stages[request.next_stage]
    if not policy.allowed(actor, policy.stage_vote(stage_role), ministry_id=request.ministry_id):
        raise PermissionDenied(
            f"stage {request.next_stage + 1} of {len(request.approval_stages)} needs role '{stage_role}', "
            f"you are '{actor.role}'"
        )
    if actor.user_id is not None and actor.user_id == request.created_by:
        raise PermissionDenied("you cannot approve a request you submitted")
    if actor.user_id is None:
        raise PermissionDenied("votes need a signed-in user")
    if _already_voted(session=session, request_id=request.id, voter_id=actor.user_id):
        raise PermissionDenied("you already voted on an earlier stage of this request")
    session.add(
        Approval(
            request_id=request.id,
            stage=request.next_stage,
            role=stage_role,
            decision=data.decision,
            voter_id=actor.user_id,
            voter=actor.username,
            comment=data.comment,
            reference=data.reference,
        )
    )
    audit.record(
        session=session,
        actor=actor,
        entity="request",
        entity_id=request.id,
        ministry_id=request.ministry_id,
        action=f"vote_{data.decision}",
        detail={"stage": request.next_stage, "role": stage_role, "reference": data.reference, "comment": data.comment},
    )
    if data.decision == Decision.reject:
        _transition(session=session, actor=actor, request=request, target=RequestStatus.rejected)
        _release_quota(session=session, request=request)
    else:
        request.next_stage += 1
        if request.next_stage == len(request.approval_stages):
            _transition(session=session, actor=actor, request=request, target=RequestStatus.approved)
            _start_fulfilment(session=session, actor=actor, request=request)
        session.add(request)
    return request


def expire_overdue(*, session: Session, actor: Actor) -> list[uuid.UUID]:
    """Expire every undecided request past its deadline, giving its quota back; one transaction."""
    overdue = session.exec(
        select(Request.id).where(Request.status == RequestStatus.pending_approval, Request.approval_deadline < utcnow())
    ).all()
    expired: list[uuid.UUID] = []
    for request_id in overdue:
        request = _row(session, request_id)
        if request.status != RequestStatus.pending_approval:
            continue  # decided while we looked
        _transition(session=session, actor=actor, request=request, target=RequestStatus.expired)
        _release_quota(session=session, request=request)
        expired.append(request_id)
    return expired


def on_operation_finished(*, session: Session, actor: Actor, request_id: uuid.UUID, succeeded: bool) -> None:
    """Keep the request in step with its provision operation."""
    request = _row(session, request_id)
    target = RequestStatus.fulfilled if succeeded else RequestStatus.failed
    if request.status != target:
        _transition(session=session, actor=actor, request=request, target=target)


def on_operation_retried(*, session: Session, actor: Actor, request_id: uuid.UUID) -> None:
    request = _row(session, request_id)
    if request.status == RequestStatus.failed:
        _transition(session=session, actor=actor, request=request, target=RequestStatus.approved)


def release_quota_of(*, session: Session, request_id: uuid.UUID) -> None:
    """Give back what the request reserved (its service was retired)."""
    request = _row(session, request_id)
    _release_quota(session=session, request=request)


def add_held_quota(*, session: Session, request_id: uuid.UUID, cost: dict[str, int]) -> None:
    """The request's service now holds more quota (a resize); the ministry is already charged."""
    request = _row(session, request_id)
    request.quota_cost = quota.add(request.quota_cost, cost)
    session.add(request)


def release_held_quota(*, session: Session, request_id: uuid.UUID, cost: dict[str, int]) -> None:
    """The request's service holds less quota (a mailbox removed): the ministry gets `cost` back."""
    request = _row(session, request_id)
    if request.quota_held:
        ministries.release(session=session, ministry_id=request.ministry_id, cost=cost)
    request.quota_cost = quota.subtract(request.quota_cost, cost)
    session.add(request)


def settle_held_quota(*, session: Session, request_id: uuid.UUID, cost: dict[str, int]) -> None:
    """The service now needs only `cost`: give the ministry back whatever was held above it."""
    request = _row(session, request_id)
    if catalog.get_offering(request.offering_id).mail_domain_from:
        # Mailboxes are charged one by one, not by the plan: a plan change keeps them.
        cost = quota.add(cost, mail_domain.mailbox_cost(int(request.quota_cost.get(mail_domain.MAILBOXES, 0))))
    surplus = quota.subtract(request.quota_cost, cost)
    if any(surplus.values()) and request.quota_held:
        ministries.release(session=session, ministry_id=request.ministry_id, cost=surplus)
    request.quota_cost = dict(cost)
    session.add(request)


def pending_change(*, session: Session, service_id: uuid.UUID) -> Request | None:
    """The service's plan change waiting for approval, if any."""
    return session.exec(
        select(Request).where(
            Request.service_id == service_id,
            Request.kind == RequestKind.modify,
            Request.status == RequestStatus.pending_approval,
        )
    ).first()


def refuse_if_change_pending(*, session: Session, service_id: uuid.UUID) -> None:
    """409 while a plan change of the service waits for approval: one change at a time."""
    waiting = pending_change(session=session, service_id=service_id)
    if waiting is not None:
        raise Conflict(
            f"a change to plan '{waiting.plan}' is waiting for approval (request {waiting.id}); "
            "cancel it or wait for the decision",
            current_state=waiting.status,
        )


def submit_change(
    *, session: Session, actor: Actor, service: Service, plan: Plan, growth: dict[str, int], justification: str = ""
) -> Request:
    """A plan change that needs more quota, approved like an order of that plan.

    The growth is reserved now, under the ministry's lock, and given back exactly once on
    rejection, expiry or cancellation; the last approval starts the modify operation. The caller
    holds the service's row lock (so two changes cannot race) and has checked the plan.
    """
    refuse_if_change_pending(session=session, service_id=service.id)
    offering = catalog.get_offering(service.offering_id)
    ministries.reserve(session=session, ministry_id=service.ministry_id, cost=growth)
    body = {"kind": RequestKind.modify.value, "service_id": str(service.id), "from": service.plan, "plan": plan.id}
    request = _open_request(
        session=session,
        actor=actor,
        values=_request_values(
            actor=actor,
            offering=offering,
            ministry_id=service.ministry_id,
            plan_id=plan.id,
            parameters={},
            justification=justification,
            quota_cost=dict(growth),
            digest=body_digest(body),
            kind=RequestKind.modify,
            service_id=service.id,
        ),
        detail={
            "kind": RequestKind.modify.value,
            "service": str(service.id),
            "from_plan": service.plan,
            "plan": plan.id,
            "quota_cost": dict(growth),
        },
    )
    return request


def _open_request(*, session: Session, actor: Actor, values: dict[str, Any], detail: dict[str, Any]) -> Request:
    """A request waiting for approval (`values` from `_request_values`), recorded in the audit
    log. The caller has reserved its `quota_cost` under the ministry's lock."""
    request = Request(**values)
    session.add(request)
    session.flush()
    opened = _opened(actor=actor, request_id=request.id, ministry_id=request.ministry_id, detail=detail)
    audit.record(session=session, **opened)
    return request


def _request_values(
    *,
    actor: Actor,
    offering: Offering,
    ministry_id: uuid.UUID,
    plan_id: str,
    parameters: dict[str, Any],
    justification: str,
    quota_cost: dict[str, int],
    digest: str,
    idempotency_key: str | None = None,
    kind: RequestKind = RequestKind.order,
    service_id: uuid.UUID | None = None,
    stages: Sequence[Role] | None = None,
    timeout_hours: int | None = None,
) -> dict[str, Any]:
    """A new request's own values: the offering's stages and timeout unless given."""
    now = utcnow()
    return {
        "kind": kind,
        "ministry_id": ministry_id,
        "service_id": service_id,
        "offering_id": offering.id,
        "offering_version": offering.version,
        "plan": plan_id,
        "parameters": parameters,
        "justification": justification,
        "status": RequestStatus.pending_approval,
        "quota_cost": quota_cost,
        "approval_stages": list(offering.approval.stages if stages is None else stages),
        "approval_deadline": now
        + timedelta(hours=offering.approval.timeout_hours if timeout_hours is None else timeout_hours),
        "idempotency_key": idempotency_key,
        "fingerprint": digest,
        "created_by": actor.user_id,
        "created_at": now,
        "updated_at": now,
    }


def _opened(*, actor: Actor, request_id: uuid.UUID, ministry_id: uuid.UUID, detail: dict[str, Any]) -> audit.Change:
    """The audit log's word for a request opened and waiting for approval."""
    return audit.Change(
        actor=actor,
        entity="request",
        entity_id=request_id,
        ministry_id=ministry_id,
        action="submitted",
        to_state=RequestStatus.pending_approval,
        detail=detail,
    )


def cancel_pending_change(*, session: Session, actor: Actor, service_id: uuid.UUID, reason: str) -> None:
    """Withdraw the service's plan change waiting for approval (the service is going away)."""
    waiting = pending_change(session=session, service_id=service_id)
    if waiting is None:
        return
    request = _row(session, waiting.id)
    if request.status == RequestStatus.pending_approval:
        _transition(
            session=session, actor=actor, request=request, target=RequestStatus.cancelled, detail={"reason": reason}
        )
        _release_quota(session=session, request=request)


def _start_fulfilment(*, session: Session, actor: Actor, request: Request) -> None:
    if request.kind == RequestKind.modify:
        _start_change(session=session, actor=actor, request=request)
        return
    if request.kind in DR_MOVES:
        _start_dr_move(session=session, actor=actor, request=request)
        return
    service = services.create(
        session=session,
        actor=actor,
        ministry_id=request.ministry_id,
        request_id=request.id,
        offering_id=request.offering_id,
        offering_version=request.offering_version,
        plan=request.plan,
        parameters=request.parameters,
        quota_cost=request.quota_cost,
    )
    offering = catalog.get_offering(request.offering_id)
    mail_domain.create_for_service(
        session=session,
        actor=actor,
        offering=offering,
        plan=catalog.get_plan(offering, request.plan),
        service_id=service.id,
        ministry_id=service.ministry_id,
        parameters=request.parameters,
    )
    operation = operations.create(
        session=session,
        actor=actor,
        service=service,
        kind=OperationKind.provision,
        request_id=request.id,
    )
    request.service_id = service.id
    request.operation_id = operation.id
    # Last: the DCIM is outside this transaction, and the site's placement lock lasts until it ends.
    colocation.reserve_for_service(session=session, offering=offering, service=service)


def _start_change(*, session: Session, actor: Actor, request: Request) -> None:
    """The approved plan change starts: its growth joins the service's held quota, and the modify
    operation is queued in the same transaction as the last vote."""
    assert request.service_id is not None
    service = services.lock(session=session, service_id=request.service_id)
    if service.status != ServiceStatus.active:
        raise Conflict(
            f"service {service.id} is {service.status}; its plan change can start only while it is active",
            current_state=service.status,
        )
    # The ministry stays charged: the order that holds the service's quota now holds the growth too.
    add_held_quota(session=session, request_id=service.request_id, cost=request.quota_cost)
    request.quota_held = False
    services.transition(
        session=session, actor=actor, service=service, target=ServiceStatus.modifying, reason=f"request {request.id}"
    )
    operation = operations.create(
        session=session,
        actor=actor,
        service=service,
        kind=OperationKind.modify,
        request_id=request.id,
        parameters={"plan": request.plan, "from_plan": service.plan},
    )
    request.operation_id = operation.id
    session.add(request)


# Who says yes to moving a running service between sites, and how long the question stays open:
# a failover is asked for in a crisis, so it expires in hours, not the days an order gets.
DR_MOVE_STAGES = (Role.operator,)
DR_MOVE_TIMEOUT_HOURS = 12
_DR_MOVE_STATUS = {RequestKind.failover: ServiceStatus.failing_over, RequestKind.failback: ServiceStatus.failing_back}


def submit_dr_move(
    *, session: Session, actor: Actor, service: Service, kind: RequestKind, justification: str = ""
) -> Request:
    """A failover (to the DR site) or failback (to the primary one) of a running service, waiting
    for an operator's approval; the approval starts its operation. The caller holds the service's
    row lock and has checked the actor may ask and the service may move (`workflows.commands`)."""
    waiting = session.exec(
        select(Request).where(
            Request.service_id == service.id,
            col(Request.kind).in_([k.value for k in DR_MOVES]),
            Request.status == RequestStatus.pending_approval,
        )
    ).first()
    if waiting is not None:
        raise Conflict(
            f"a {waiting.kind} of this service is waiting for approval (request {waiting.id})",
            current_state=waiting.status,
        )
    offering = catalog.get_offering(service.offering_id)
    body = {"kind": kind.value, "service_id": str(service.id), "from": service.running_at}
    return _open_request(
        session=session,
        actor=actor,
        values=_request_values(
            actor=actor,
            offering=offering,
            ministry_id=service.ministry_id,
            plan_id=service.plan,
            parameters={},
            justification=justification,
            quota_cost={},
            digest=body_digest(body),
            kind=kind,
            service_id=service.id,
            stages=DR_MOVE_STAGES,
            timeout_hours=DR_MOVE_TIMEOUT_HOURS,
        ),
        detail={"kind": kind.value, "service": str(service.id), "from_site": service.running_at},
    )


def _start_dr_move(*, session: Session, actor: Actor, request: Request) -> None:
    """The approved failover or failback starts, in the same transaction as the last vote."""
    assert request.service_id is not None
    service = services.lock(session=session, service_id=request.service_id)
    if service.status != ServiceStatus.active:
        raise Conflict(
            f"service {service.id} is {service.status}; its {request.kind} can start only while it is active",
            current_state=service.status,
        )
    services.transition(
        session=session,
        actor=actor,
        service=service,
        target=_DR_MOVE_STATUS[RequestKind(request.kind)],
        reason=f"request {request.id}",
    )
    operation = operations.create(
        session=session, actor=actor, service=service, kind=str(request.kind), request_id=request.id
    )
    request.operation_id = operation.id
    session.add(request)


def _transition(
    *, session: Session, actor: Actor, request: Request, target: RequestStatus, detail: dict[str, object] | None = None
) -> None:
    REQUEST_STATES.check(request.status, target)
    previous = request.status
    request.status = target
    request.updated_at = utcnow()
    session.add(request)
    audit.record(
        session=session,
        actor=actor,
        entity="request",
        entity_id=request.id,
        ministry_id=request.ministry_id,
        action="status_changed",
        from_state=previous,
        to_state=target,
        detail=detail,
    )


def _release_quota(*, session: Session, request: Request) -> None:
    if request.quota_held:
        ministries.release(session=session, ministry_id=request.ministry_id, cost=request.quota_cost)
        request.quota_held = False
        session.add(request)


def _locked(*, session: Session, actor: Actor, request_id: uuid.UUID) -> Request:
    request = locked(session, Request, request_id)
    if request is None or not policy.can_see(actor, request.ministry_id):
        raise NotFound(f"request {request_id} not found")
    return request


def _already_voted(*, session: Session, request_id: uuid.UUID, voter_id: uuid.UUID) -> bool:
    return (
        session.exec(
            select(Approval.id).where(Approval.request_id == request_id, Approval.voter_id == voter_id)
        ).first()
        is not None
    )


def _row(session: Session, request_id: uuid.UUID) -> Request:
    request = locked(session, Request, request_id)
    if request is None:
        raise NotFound(f"request {request_id} not found")
    return request


def _ordering_ministry(actor: Actor, requested: uuid.UUID | None) -> uuid.UUID:
    if policy.sees_all_ministries(actor):
        if requested is None:
            raise InvalidInput("say which ministry the order is for", field="ministry_id")
        return requested
    if requested is not None and requested != actor.ministry_id:
        # Ordering for another ministry looks exactly like naming one that does not exist.
        raise NotFound(f"ministry {requested} not found", field="ministry_id")
    assert actor.ministry_id is not None
    return actor.ministry_id
