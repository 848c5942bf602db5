"""The console's number formatting, on numbers and on report data of any other shape."""

import pytest
from jinja2 import Undefined

from portal_api.console.i18n import format_number

pytestmark = pytest.mark.unit


def test_numbers_are_grouped_in_the_readers_digits() -> None:
    assert format_number(1234567, "en") == "1,234,567"
    assert format_number(1500.5, "en") == "1,500.5"
    assert format_number(1234, "km") == "១,២៣៤"


@pytest.mark.parametrize(
    "value", [Undefined(), "12 s; <b>drop</b>", float("nan"), float("inf"), True, None, [1], {"a": 1}]
)
def test_anything_else_is_shown_as_it_is_instead_of_failing_the_page(value: object) -> None:
    # A drill report's body is data: one without its targets (a template's Undefined) made
    # /console/drills answer 500.
    assert format_number(value, "en") == str(value)
