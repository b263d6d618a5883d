"""The one parser for ids and whole numbers from text: ASCII digits only, within the database's bigint."""

from __future__ import annotations

import pytest

from webapp.ids import MAX_ID, parse_id, parse_int


@pytest.mark.parametrize("text", ["²", "\u0663", "\uff11", "1_000", "1e3", "12.0", "+5", "0x10", "", " ", "1 2", "abc",
                                  str(MAX_ID + 1), str(2**70), "9" * 5000, "0", "-3", "12\n3"])
def test_what_is_not_an_id(text):
    assert parse_id(text) is None


@pytest.mark.parametrize(("value", "expected"), [("1", 1), (" 42 ", 42), ("007", 7), (str(MAX_ID), MAX_ID), (9, 9)])
def test_ids(value, expected):
    assert parse_id(value) == expected


def test_bools_and_other_types_are_not_ids():
    assert parse_id(True) is None and parse_id(1.0) is None and parse_id(None) is None and parse_id(MAX_ID + 1) is None


def test_whole_numbers_may_be_negative_and_bounded_either_way():
    assert parse_int("-12") == -12 and parse_int(str(-(2**63))) == -(2**63) and parse_int(str(-(2**63) - 1)) is None
    assert parse_int("5", low=0, high=4) is None and parse_int("-", low=0) is None and parse_int("²") is None
