"""The input guard's test for text PostgreSQL cannot store: NUL and every lone surrogate, nothing else."""

import pytest

from portal_api.input_guard import find_unstorable


@pytest.mark.parametrize("char", ["\ud800", "\udbff", "\udc00", "\udfff"])
def test_every_lone_surrogate_is_refused_naming_the_field(char: str) -> None:
    assert find_unstorable({"name": f"a{char}b"}) == ("name", "holds a lone surrogate, which is not valid Unicode")


@pytest.mark.parametrize("text", ["\ud7ff", "\ue000", "\U0001f600", "សួស្តី", "plain"])
def test_text_around_the_surrogates_is_accepted(text: str) -> None:
    assert find_unstorable({"name": text, "list": [text]}) is None


def test_nul_is_named_before_a_surrogate_in_the_same_string() -> None:
    assert find_unstorable({"a": {"b": "\ud800\x00"}}) == ("a.b", "holds a NUL character, which cannot be stored")
