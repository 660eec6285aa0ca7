"""The C-speed JSON path (orjson) agrees with the strict pure-Python decoder on every input.

``_fast_json_object`` either returns exactly what the strict decoder returns (same values,
same types) or None, and then the strict decoder decides. Duplicate member names in any
spelling (escapes, nesting, whitespace before the colon) never get through the fast path.
"""

from __future__ import annotations

import base64
import json
import math
import platform
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jwkguard import _parse
from jwkguard._parse import (
    _fast_json_object,
    _strict_json_object,
    b64url_decode,
    split_compact,
    split_standard,
    standard_b64_decode,
    strict_json_object,
)
from jwkguard.errors import MalformedToken

AGREEMENT = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (1 == 1.0 == True is not enough)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return list(a) == list(b) and all(_same(a[name], b[name]) for name in a)
    if type(a) is list:
        return len(a) == len(b) and all(map(_same, a, b))
    if type(a) is float:
        return math.copysign(1, a) == math.copysign(1, b) and (a == b or (a != a and b != b))
    return bool(a == b)


def _strict(raw: bytes) -> dict[str, Any] | str:
    try:
        return _strict_json_object(raw, "payload")
    except MalformedToken as error:
        return f"refused: {error.description}"


def _assert_agree(raw: bytes) -> None:
    fast = _fast_json_object(raw)
    strict = _strict(raw)
    if fast is not None:
        assert not isinstance(strict, str), (raw, strict)
        assert _same(fast, strict), (raw, fast, strict)
    # And the public function always answers as the strict decoder does.
    try:
        public: dict[str, Any] | str = strict_json_object(raw, "payload")
    except MalformedToken as error:
        public = f"refused: {error.description}"
    if isinstance(strict, str):
        assert public == strict
    else:
        assert _same(public, strict)


_WHITESPACE = st.sampled_from(["", "", "", " ", "  ", "\t", "\n", "\r\n", " \t"])
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["a", "b", ":", '"', "\\", " :", '":', "\ud800", "é", "\x00"]),
)
_NAMES = st.one_of(
    st.sampled_from(["a", "b", "iss", "exp", ":", " ", '"', ""]), st.text(max_size=6)
)


def _name_spellings(name: str) -> st.SearchStrategy[str]:
    """The JSON text of a member name, plainly or with some characters escaped."""
    plain = json.dumps(name, ensure_ascii=False)
    escaped = '"' + "".join(f"\\u{ord(char):04x}" for char in name) + '"'
    return st.sampled_from([plain, json.dumps(name), escaped])


@st.composite
def _json_text(draw: st.DrawFn, depth: int = 0) -> str:
    """JSON text, often with duplicate names in any spelling and arbitrary whitespace."""
    kind = draw(st.integers(0, 5)) if depth < 4 else 5
    ws = draw(_WHITESPACE)
    if kind <= 2:
        names: list[str] = draw(st.lists(_NAMES, max_size=6))
        duplicate: bool = draw(st.booleans())
        if names and duplicate:
            names.append(draw(st.sampled_from(names)))  # a duplicate, spelled as drawn
        members = []
        for name in names:
            key = draw(_name_spellings(name))
            value = draw(_json_text(depth + 1))
            members.append(f"{ws}{key}{draw(_WHITESPACE)}:{draw(_WHITESPACE)}{value}{ws}")
        return "{" + ",".join(members) + "}"
    if kind == 3:
        items = draw(st.lists(_json_text(depth + 1), max_size=4))
        return "[" + ws + ",".join(items) + ws + "]"
    value = draw(_SCALARS)
    if isinstance(value, str):
        return draw(st.sampled_from([json.dumps(value), json.dumps(value, ensure_ascii=False)]))
    return json.dumps(value)


@AGREEMENT
@given(_json_text())
def test_fast_and_strict_agree_on_generated_json(text: str) -> None:
    _assert_agree(text.encode("utf-8", "surrogatepass"))


@AGREEMENT
@given(st.binary(max_size=200))
def test_fast_and_strict_agree_on_arbitrary_bytes(raw: bytes) -> None:
    _assert_agree(raw)


@AGREEMENT
@given(
    st.recursive(
        _SCALARS,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=5), children, max_size=4)
        ),
        max_leaves=20,
    ),
    st.sampled_from([(",", ":"), (", ", ": "), (",", " : ")]),
)
def test_fast_and_strict_agree_on_serialised_values(value: Any, separators: Any) -> None:
    _assert_agree(json.dumps({"v": value}, separators=separators).encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":2}',
        b'{"a":1,"\\u0061":2}',
        b'{"\\u0061":1,"a":2}',
        b'{"a":1, "a" :2}',
        b'{"a":1,"a"\t:2}',
        b'{"a":1,"a"\n:2}',
        b'{"a":1,"a"\r\n :2}',
        b'{"x":{"b":1,"b":2}}',
        b'{"x":[{"b":1,"b":2}]}',
        b'{"x":"\\":","a":1,"a":2}',
        b'{"x":":","a":1,"a":2,"y":" "}',
        b'{"a":"\\" ","a":2}',
    ],
)
def test_duplicate_members_never_take_the_fast_path(raw: bytes) -> None:
    assert _fast_json_object(raw) is None
    with pytest.raises(MalformedToken, match="not valid JSON"):
        strict_json_object(raw, "payload")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"exp":123456789012345678901234567890}',
        b'{"exp":-9223372036854775809}',
        b'{"a":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}',
        b'{"a":"\\ud800"}',
        b'{"a":NaN}',
        b'{"exp":1e999}',
    ],
)
def test_what_orjson_reads_otherwise_is_left_to_the_strict_decoder(raw: bytes) -> None:
    assert _fast_json_object(raw) is None
    _assert_agree(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":[1,2],"a":1}',
        b'{"a":[],"a":1}',
        b'{"a":{},"a":1}',
        b'{"a":{"b":1},"a":1}',
        b'{"a":[{"a":1}],"a":2}',
        b'{"a":1.5,"a":2}',
        b'{"a":"x","a":"y,z"}',
        b'{"a":1 ,"a":2}',
    ],
)
def test_a_flat_result_of_a_duplicate_never_passes_the_comma_bound(raw: bytes) -> None:
    """The decoded object is flat (the replaced value was nested, a float or anything), yet
    its text has more members than names: commas + 1 exceeds the names, both bounds refuse."""
    assert _fast_json_object(raw) is None
    with pytest.raises(MalformedToken, match="not valid JSON"):
        strict_json_object(raw, "payload")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"b":"x"}',
        b'{ "a" : 1 , "b" : "x" }',
        b'{"name":"Doe, John","a":1}',
        b'{"a":"\\",\\"","b":2}',
        b'{"a":1}',
        b"{}",
    ],
)
def test_flat_objects_take_the_fast_path_with_commas_in_strings_or_not(raw: bytes) -> None:
    assert _fast_json_object(raw) == json.loads(raw)
    _assert_agree(raw)


def test_typical_payloads_take_the_fast_path() -> None:
    """Compact and ``json.dumps``-spaced tokens, nested claims and escapes read at C speed."""
    payload = {
        "iss": "https://id.example.com/",
        "sub": "user-123",
        "aud": ["https://api.example.com", "urn:x"],
        "exp": 1_800_000_000,
        "scope": "orders:read orders:write",
        "realm_access": {"roles": ["admin", "user"]},
        "name": "José",
    }
    for separators in ((",", ":"), (", ", ": ")):
        raw = json.dumps(payload, separators=separators).encode()
        assert _fast_json_object(raw) == payload


@AGREEMENT
@given(st.binary(max_size=80))
def test_split_standard_agrees_with_split_compact(token: bytes) -> None:
    token = token.replace(b"=", b".")  # dots more often
    expected: tuple[bytes, bytes, bytes] | tuple[str, str]
    try:
        expected = split_compact(token)
    except MalformedToken as error:
        expected = (error.reason, error.description)
    if len(expected) == 2:
        with pytest.raises(MalformedToken) as raised:
            split_standard(token)
        assert (raised.value.reason, raised.value.description) == expected
        return
    standard = split_standard(token)
    assert [len(part) for part in standard] == [len(part) for part in expected]
    table = bytes.maketrans(b"-_", b"+/")
    assert standard == tuple(part.translate(table) for part in expected)
    for part, url in zip(standard, expected, strict=True):
        try:
            decoded: bytes | str = b64url_decode(url)
        except MalformedToken as error:
            decoded = error.description
        try:
            again: bytes | str = standard_b64_decode(part)
        except MalformedToken as error:
            again = error.description
        assert again == decoded


_STANDARD_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _reference_decode(segment: bytes) -> bytes | None:
    """The stdlib's reading of an unpadded segment, or None where a canonical one is not."""
    if len(segment) % 4 == 1:
        return None
    padded = segment + b"=" * (-len(segment) % 4)
    decoded = base64.b64decode(padded, validate=True)
    # Canonical only: encoding the bytes again must give back the very same text.
    return decoded if base64.b64encode(decoded).rstrip(b"=") == segment else None


@AGREEMENT
@given(st.binary(max_size=120).map(lambda raw: bytes(_STANDARD_ALPHABET[b % 64] for b in raw)))
def test_the_c_base64_decoder_agrees_with_the_stdlib(segment: bytes) -> None:
    expected = _reference_decode(segment)
    if expected is None:
        with pytest.raises(MalformedToken):
            standard_b64_decode(segment)
    else:
        assert standard_b64_decode(segment) == expected


@AGREEMENT
@given(st.binary(max_size=300))
def test_encoded_bytes_decode_to_themselves(data: bytes) -> None:
    assert standard_b64_decode(base64.b64encode(data).rstrip(b"=")) == data


@pytest.mark.skipif(platform.python_implementation() != "CPython", reason="pybase64 is CPython's")
def test_the_c_base64_decoder_serves_on_cpython() -> None:
    # A silent fall back to binascii would cost a third of a microsecond per segment.
    assert _parse._c_b64decode is not None
