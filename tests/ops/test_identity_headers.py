"""The one encoding of identity headers: never fails, always a valid field value, reversible,
so distinct claim values can never reach the upstream as the same header value."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jwkguard._forward_auth import (
    decode_list,
    decode_text,
    encode_list,
    encode_text,
    header_value,
)

# RFC 9110 section 5.5 field-value, and nothing a proxy trims, folds or splits on (SP, ",").
FIELD_VALUE = re.compile(r"[\x21-\x7e]*")

# Every code point, lone surrogates included (a Python str can hold them).
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()))
ITEMS = st.lists(ANY_TEXT.filter(bool), min_size=1, max_size=8)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)


@given(ANY_TEXT)
def test_text_encodes_to_a_valid_field_value_and_decodes_back(text: str) -> None:
    encoded = encode_text(text)
    assert FIELD_VALUE.fullmatch(encoded)
    assert "," not in encoded
    assert decode_text(encoded) == text


@given(ANY_TEXT, ANY_TEXT)
def test_distinct_texts_never_share_an_encoding(first: str, second: str) -> None:
    if first != second:
        assert encode_text(first) != encode_text(second)


@given(ITEMS, st.sampled_from([",", " "]))
def test_lists_encode_reversibly_with_either_separator(items: list[str], separator: str) -> None:
    encoded = encode_list(items, separator)
    assert FIELD_VALUE.fullmatch(encoded.replace(" ", "!"))
    assert decode_list(encoded, separator) == items


@given(ITEMS, ITEMS)
def test_distinct_lists_never_share_an_encoding(first: list[str], second: list[str]) -> None:
    if first != second:
        assert encode_list(first) != encode_list(second)
        assert encode_list(first, " ") != encode_list(second, " ")


@given(JSON)
def test_any_claim_value_gives_a_valid_header_value_or_none(value: Any) -> None:
    encoded = header_value(value)
    assert encoded is None or (FIELD_VALUE.fullmatch(encoded) and 0 < len(encoded) <= 4096)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("%C3%A9mile", "\u00e9mile"),
        (" admin ", "admin"),
        (["users,admins"], ["users", "admins"]),
        ("a\r\nb", "a b"),
        ("x%2Cy", "x,y"),
    ],
)
def test_the_reported_collisions_stay_apart(first: Any, second: Any) -> None:
    assert header_value(first) != header_value(second)
    assert None not in (header_value(first), header_value(second))


def test_plain_values_pass_unchanged_and_odd_ones_are_escaped() -> None:
    assert header_value("alice") == "alice"
    assert header_value(["orders:read", 7]) == "orders:read,7"
    assert header_value("\u00e9mile") == "%C3%A9mile"
    assert header_value(" admin ") == "%20admin%20"
    assert header_value(["users,admins"]) == "users%2Cadmins"
    assert header_value("\ud800") == "%ED%A0%80"  # a lone surrogate: no crash


@pytest.mark.parametrize(
    "value", [None, "", [], [""], {"a": 1}, ["a", None], ["a", ["b"]], [True], "x" * 5000]
)
def test_values_without_a_header_form_send_no_header(value: Any) -> None:
    assert header_value(value) is None


@pytest.mark.parametrize("value", ["%", "%4", "%zz", "a b", "a,b", "\u00e9", "%FF"])
def test_the_decoder_refuses_what_the_encoder_never_writes(value: str) -> None:
    with pytest.raises(ValueError, match=r"percent escape|unencoded|not UTF-8"):
        decode_text(value)
