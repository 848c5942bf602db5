"""An image row read back from PostgreSQL carries its status as the column's plain string; its
public form is made without pydantic's serializer warning (one per read, in every API log)."""

import datetime
import uuid
import warnings

import pytest

from orchestrator.images.models import BakedImage, ImageStatus
from orchestrator.images.service import public

pytestmark = pytest.mark.unit


def test_a_row_with_a_plain_string_status_becomes_its_public_form_without_warnings() -> None:
    row = BakedImage(
        id=uuid.uuid4(), role="web", site="primary", name="tonle-web-1", status=ImageStatus.building,
        install_digest="abc", base_image="debian-12", packages={}, requested_by="admin",
        created_at=datetime.datetime.now(datetime.UTC),
    )  # fmt: skip
    row.status = "building"  # type: ignore[assignment]  # as the String column loads it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = public(row, current_digest="abc")
        body = image.model_dump_json()
    assert image.status is ImageStatus.building and image.current
    assert '"status":"building"' in body
    assert not public(row, current_digest="other").current
