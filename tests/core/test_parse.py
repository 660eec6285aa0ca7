"""Strict compact-JWS parsing: base64url, segments, and JSON (RFC 7515 section 7.1, RFC 8259)."""

from __future__ import annotations

import base64
import json

import pytest

from jwkguard._parse import (
    b64url_decode,
    b64url_encode,
    parse_compact,
    split_compact,
    strict_json_object,
)
from jwkguard.errors import MalformedToken


@pytest.mark.parametrize(
    "data", [b"", b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar", bytes(range(256))]
)
def test_b64url_round_trip_matches_the_standard_library(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert encoded == base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    assert b64url_decode(encoded.encode()) == data


def test_b64url_decode_uses_the_url_alphabet() -> None:
    assert b64url_decode(b"-_-_") == base64.urlsafe_b64decode("-_-_")


@pytest.mark.parametrize(
    ("canonical", "non_canonical"),
    [
        (b"Zg", b"Zh"),  # "f": 2 characters, the low 4 bits of the last must be zero
        (b"Zg", b"Zv"),
        (b"Zm8", b"Zm9"),  # "fo": 3 characters, the low 2 bits of the last must be zero
        (b"Zm8", b"Zm-"),
    ],
)
def test_b64url_decode_refuses_non_zero_trailing_bits(
    canonical: bytes, non_canonical: bytes
) -> None:
    # A lenient decoder maps both spellings to the same bytes; only one may be accepted.
    assert base64.urlsafe_b64decode(non_canonical + b"==") == b64url_decode(canonical)
    with pytest.raises(MalformedToken) as caught:
        b64url_decode(non_canonical)
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize("segment", [b"A", b"AAAAA", b"Zm9vY"])
def test_b64url_decode_refuses_a_length_of_one_modulo_four(segment: bytes) -> None:
    with pytest.raises(MalformedToken):
        b64url_decode(segment)


def test_split_compact_returns_the_three_segments() -> None:
    assert split_compact(b"aGVhZA.cGF5bG9hZA.c2ln") == (b"aGVhZA", b"cGF5bG9hZA", b"c2ln")


def test_split_compact_allows_an_empty_signature_segment() -> None:
    # An unsigned token parses; the algorithm policy refuses it later.
    assert split_compact(b"aGVhZA.cGF5bG9hZA.") == (b"aGVhZA", b"cGF5bG9hZA", b"")


@pytest.mark.parametrize(
    "token",
    [
        b"",
        b"..",
        b"a.b",
        b"a.b.c.d",
        b".b.c",
        b"a..c",
        b"a.b.c=",
        b"a=.b.c",
        b"a+b.c.d",
        b"a/b.c.d",
        b"a.b.c ",
        b" a.b.c",
        b"a.b\n.c",
        b"a.b.c\x00",
        "a.b.cé".encode(),
    ],
)
def test_split_compact_refuses_anything_but_three_base64url_segments(token: bytes) -> None:
    with pytest.raises(MalformedToken) as caught:
        split_compact(token)
    assert caught.value.reason == "malformed"


def test_split_compact_names_a_five_segment_jwe() -> None:
    with pytest.raises(MalformedToken) as caught:
        split_compact(b"eyJhbGciOiJSU0EtT0FFUCJ9.a2V5.aXY.Y2lwaGVy.dGFn")
    assert caught.value.reason == "encrypted_token"
    assert "JWE" in caught.value.description


def test_strict_json_object_parses_an_object() -> None:
    assert strict_json_object(b'{"a": [1, {"b": null}], "c": "\\u00e9"}', "payload") == {
        "a": [1, {"b": None}],
        "c": "é",
    }


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": 1, "b": {"c": 1, "c": 1}}',
        b'{"a": [{"x": 1, "x": 1}]}',
        b'{"\\u0061": 1, "a": 2}',  # the same name, once escaped
    ],
)
def test_strict_json_object_refuses_duplicate_member_names(raw: bytes) -> None:
    with pytest.raises(MalformedToken):
        strict_json_object(raw, "payload")


@pytest.mark.parametrize("raw", [b"[]", b'"a"', b"1", b"null", b"true", b"[{}]"])
def test_strict_json_object_refuses_other_json_values(raw: bytes) -> None:
    with pytest.raises(MalformedToken) as caught:
        strict_json_object(raw, "payload")
    assert "not a JSON object" in caught.value.description


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b"{'a': 1}",
        b'{"a": 1,}',
        b'{"a": 1} x',
        b'{"a": 01}',
        b"\xef\xbb\xbf{}",  # a byte-order mark is not JSON text (RFC 8259 section 8.1)
        b'{"a": "\xff"}',  # not UTF-8
        b'{"a": "\xed\xa0\x80"}',  # a surrogate encoded in UTF-8 is not UTF-8
        b'{"a": "\\ud800"}',  # an unpaired surrogate escape
        b'{"\\udc00": 1}',  # in a member name
        b'{"a": ["\\udfff"]}',  # nested
        b"",
    ],
)
def test_strict_json_object_refuses_what_is_not_strict_json(raw: bytes) -> None:
    with pytest.raises(MalformedToken) as caught:
        strict_json_object(raw, "payload")
    assert caught.value.reason == "malformed"


def test_strict_json_object_accepts_a_paired_surrogate_escape() -> None:
    assert strict_json_object(b'{"a": "\\ud83d\\ude00"}', "payload") == {"a": "\U0001f600"}


def test_strict_json_object_overflowing_numbers_become_infinity_for_the_claim_checks() -> None:
    # The parser keeps 1e999 (a valid JSON number); the time checks refuse non-finite values.
    assert strict_json_object(b'{"exp": 1e999}', "payload") == {"exp": float("inf")}


def test_strict_json_object_refuses_integers_too_long_to_convert() -> None:
    with pytest.raises(MalformedToken):
        strict_json_object(b'{"exp": 1' + b"0" * 5000 + b"}", "payload")


def test_strict_json_object_bounds_nesting_depth_at_twenty() -> None:
    assert strict_json_object(b'{"a": ' + b"[" * 19 + b"]" * 19 + b"}", "payload")
    with pytest.raises(MalformedToken) as caught:
        strict_json_object(b'{"a": ' + b"[" * 20 + b"]" * 20 + b"}", "payload")
    assert "nested too deeply" in caught.value.description


def test_strict_json_object_refuses_very_deep_nesting_without_recursing() -> None:
    with pytest.raises(MalformedToken):
        strict_json_object(b"[" * 1_000_000 + b"]" * 1_000_000, "payload")


def test_depth_count_ignores_brackets_inside_strings() -> None:
    raw = json.dumps({"a": "[" * 100 + "{" * 100, "b": '\\"[[[['}).encode()
    assert strict_json_object(raw, "payload")["a"] == "[" * 100 + "{" * 100


def _compact(header: bytes, payload: bytes, signature: bytes = b"sig") -> bytes:
    return b".".join(b64url_encode(part).encode() for part in (header, payload, signature))


def test_parse_compact_gives_header_payload_signing_input_and_signature() -> None:
    token = _compact(b'{"alg":"RS256"}', b'{"sub":"a"}')
    parsed = parse_compact(token)
    assert parsed.header == {"alg": "RS256"}
    assert parsed.payload == {"sub": "a"}
    assert parsed.signing_input == token.rsplit(b".", 1)[0]
    assert parsed.signature == b"sig"


def test_parse_compact_reuses_cached_headers_and_bounds_the_cache() -> None:
    cache: dict[bytes, dict[str, object]] = {}
    first = parse_compact(_compact(b'{"alg":"RS256"}', b"{}"), cache)
    second = parse_compact(_compact(b'{"alg":"RS256"}', b'{"n":1}'), cache)
    assert second.header is first.header
    for number in range(200):
        parse_compact(_compact(b'{"alg":"RS256","n":%d}' % number, b"{}"), cache)
    assert len(cache) <= 64


def test_parse_compact_names_the_segment_at_fault() -> None:
    with pytest.raises(MalformedToken) as caught:
        parse_compact(_compact(b"[]", b"{}"))
    assert "header" in caught.value.description
    with pytest.raises(MalformedToken) as caught:
        parse_compact(_compact(b"{}", b"[]"))
    assert "payload" in caught.value.description
