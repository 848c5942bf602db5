import pytest

from orchestrator.errors import IllegalTransition
from orchestrator.operations.models import OperationStatus
from orchestrator.operations.states import OPERATION_STATES
from orchestrator.requests.models import RequestStatus
from orchestrator.requests.states import REQUEST_STATES
from orchestrator.services.models import ServiceStatus
from orchestrator.services.states import SERVICE_STATES

pytestmark = pytest.mark.unit


def test_illegal_transition_says_what_and_where() -> None:
    with pytest.raises(IllegalTransition) as raised:
        REQUEST_STATES.check(RequestStatus.rejected, RequestStatus.approved)
    assert raised.value.current == "rejected" and raised.value.target == "approved"
    assert "request is 'rejected' and cannot become 'approved'" in str(raised.value)


@pytest.mark.parametrize("state", [RequestStatus.rejected, RequestStatus.cancelled, RequestStatus.expired])
def test_ended_requests_are_terminal(state: RequestStatus) -> None:
    assert REQUEST_STATES.is_terminal(state)


def test_a_retired_service_stays_retired() -> None:
    assert SERVICE_STATES.is_terminal(ServiceStatus.retired)
    assert not SERVICE_STATES.allowed(ServiceStatus.retired, ServiceStatus.active)


def test_every_service_state_but_retired_has_a_way_forward() -> None:
    for state in ServiceStatus:
        if state != ServiceStatus.retired:
            assert not SERVICE_STATES.is_terminal(state), state


def test_operations_can_be_requeued_only_from_running_failed_or_waiting() -> None:
    sources = {s for s in OperationStatus if OPERATION_STATES.allowed(s, OperationStatus.queued)}
    # waiting -> queued: the signal a parked step waited for has arrived.
    assert sources == {OperationStatus.running, OperationStatus.failed, OperationStatus.waiting}
    assert OPERATION_STATES.is_terminal(OperationStatus.succeeded)
    # Only a running step can park, and a parked operation can only resume or be cancelled.
    assert {s for s in OperationStatus if OPERATION_STATES.allowed(s, OperationStatus.waiting)} == {
        OperationStatus.running
    }
    assert OPERATION_STATES.transitions[OperationStatus.waiting] == {OperationStatus.queued, OperationStatus.cancelled}
