"""New rows written as plain statements get the same defaults as the models would give them."""

import uuid

import pytest

from orchestrator.database.rows import new_row
from orchestrator.requests.models import Request, RequestKind

pytestmark = pytest.mark.unit

GIVEN = {
    "ministry_id": uuid.uuid4(),
    "offering_id": "web-hosting",
    "offering_version": 1,
    "plan": "small",
    "status": "pending_approval",
    "approval_deadline": None,
    "fingerprint": "0" * 64,
}


def test_every_column_is_given_or_defaulted_as_the_model_does() -> None:
    row = new_row(Request, **GIVEN)
    assert set(row) == set(Request.__table__.c.keys())  # type: ignore[attr-defined]
    assert row["kind"] == RequestKind.order and row["quota_held"] is True and row["next_stage"] == 0
    assert row["parameters"] == {} and row["approval_stages"] == []
    assert isinstance(row["id"], uuid.UUID) and row["created_at"].tzinfo is not None
    assert row["plan"] == "small"


def test_factories_are_called_for_each_row() -> None:
    first, second = new_row(Request, **GIVEN), new_row(Request, **GIVEN)
    assert first["id"] != second["id"]
    first["parameters"]["x"] = 1
    assert second["parameters"] == {}


def test_a_required_column_left_out_or_an_unknown_one_is_refused() -> None:
    without_plan = {k: v for k, v in GIVEN.items() if k != "plan"}
    with pytest.raises(TypeError, match=r"Request\.plan has no default"):
        new_row(Request, **without_plan)
    with pytest.raises(TypeError, match="no column colour"):
        new_row(Request, **GIVEN, colour="blue")
