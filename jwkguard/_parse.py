"""Strict parsing of a compact JWS (RFC 7515 section 7.1) into header, payload and signature."""

from __future__ import annotations

import binascii
import json
import math
import re
from binascii import a2b_base64, b2a_base64
from collections.abc import Callable
from itertools import accumulate
from typing import Any, NamedTuple

from .errors import MalformedToken

_c_loads: Callable[[bytes], Any] | None
try:
    from orjson import loads as _c_loads
except ImportError:  # pragma: no cover - a dependency on CPython; elsewhere the strict path serves
    _c_loads = None

_c_b64decode: Callable[[bytes, None, bool], bytes] | None
try:
    # Decodes a token's segments in about a third of binascii's time (SIMD); same bytes out.
    from pybase64 import b64decode as _c_b64decode
except ImportError:  # pragma: no cover - a dependency on CPython; elsewhere binascii serves
    _c_b64decode = None

__all__ = [
    "ParsedToken",
    "b64url_decode",
    "b64url_encode",
    "parse_compact",
    "split_compact",
    "split_standard",
    "standard_b64_decode",
    "strict_json_object",
]

_COMPACT_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_MAX_JSON_DEPTH = 20
_ESCAPE_PAIR = re.compile(rb"\\.", re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
# Openers become 1 and closers 255 (-1 as a signed byte).
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_TO_STANDARD_ALPHABET = bytes.maketrans(b"-_", b"+/")
# One pass over a whole token: base64url becomes standard base64, '.' stays, and every byte
# outside the compact alphabet becomes '!' (33), which no base64 alphabet holds.
_CHECKED_STANDARD = bytes(
    byte if byte in _COMPACT_ALPHABET else 33 for byte in range(256)
).translate(_TO_STANDARD_ALPHABET)
# Per final character (standard alphabet): the bits that must be zero when it ends a 2- or
# 3-character group.
_STANDARD_TRAILING_BITS = (
    {c: i & 0x0F for i, c in enumerate(_ALPHABET.translate(_TO_STANDARD_ALPHABET))},
    {c: i & 0x03 for i, c in enumerate(_ALPHABET.translate(_TO_STANDARD_ALPHABET))},
)
_TO_URL_ALPHABET = bytes.maketrans(b"+/", b"-_")
_PADDING = (b"", b"", b"==", b"=")
_HEADER_CACHE_SIZE = 64


class ParsedToken(NamedTuple):
    """A compact JWS split and decoded, not yet verified (a tuple: cheap to build per token)."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes
    payload_json: bytes  # the payload's JSON text, for the verified-token cache


def _not_base64url() -> MalformedToken:
    return MalformedToken("The access token is not valid base64url", reason="malformed")


def b64url_decode(segment: bytes) -> bytes:
    """Decode unpadded base64url, refusing non-canonical encodings (RFC 7515 section 2).

    The caller has already checked that ``segment`` holds only base64url characters.
    """
    return standard_b64_decode(segment.translate(_TO_STANDARD_ALPHABET))


def standard_b64_decode(segment: bytes) -> bytes:
    """Decode unpadded base64, refusing non-canonical encodings; for base64url segments that
    ``split_standard`` (or ``b64url_decode``) already turned into the standard alphabet."""
    remainder = len(segment) & 3
    if remainder:
        if remainder == 1:
            raise _not_base64url()
        # Trailing bits beyond the last whole byte must be zero, so each value has one encoding.
        if _STANDARD_TRAILING_BITS[remainder - 2][segment[-1]]:
            raise _not_base64url()
        segment += _PADDING[remainder]
    try:
        if _c_b64decode is not None:
            return _c_b64decode(segment, None, True)  # positional: a third cheaper than keywords
        return a2b_base64(segment)  # pragma: no cover - pybase64 is a dependency on CPython
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - checked above
        raise _not_base64url() from exc


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 section 2)."""
    encoded = b2a_base64(data, newline=False).translate(_TO_URL_ALPHABET)
    return encoded.rstrip(b"=").decode("ascii")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member name")
    return result


# Built once: json.loads() with hooks would build a new decoder on every call.
_STRICT_DECODER = json.JSONDecoder(object_pairs_hook=_unique_pairs, parse_constant=_refuse_constant)
_scan_once: Any = _STRICT_DECODER.scan_once  # type: ignore[attr-defined]
_JSON_WHITESPACE = " \t\n\r"


def _decode_json(text: str) -> Any:
    # The scanner alone, as JSONDecoder.decode() calls it, minus its whitespace regexes: tokens
    # rarely hold insignificant whitespace, and when they do the full decoder takes over.
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return _STRICT_DECODER.decode(text)  # leading whitespace, or not JSON: it decides
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
        raise ValueError("extra data after the JSON value")
    return value


def _depth_exceeds(raw: bytes, limit: int) -> bool:
    # Cheap upper bound first: fewer openers than the limit cannot nest deeper than it.
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    # Linear and at C speed: drop escape pairs (so every '"' left delimits a string), keep
    # what lies outside strings, turn its brackets into +1/-1 steps and find the deepest point.
    outside = b"".join(_ESCAPE_PAIR.sub(b"", raw).split(b'"')[::2])
    steps = memoryview(outside.translate(_BRACKET_STEPS, _NOT_BRACKETS)).cast("b")
    return max(accumulate(steps), default=0) > limit


def _has_lone_surrogate(value: Any) -> bool:
    # JSON may spell an unpaired UTF-16 surrogate as an escape (RFC 8259 section 8.2); such a
    # string cannot be encoded again, so it would fail later in logs or response headers.
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif kind is dict:
            stack.extend(item)
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return False


# A run of this many digits may be an integer beyond 64 bits, which orjson turns into a float.
_LONG_DIGIT_RUN = b"0" * 19
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")


_NESTED_OR_FLOAT = frozenset({dict, list, float})


def _count_names(value: Any) -> tuple[int, bool, int]:
    """Member names of every object in a decoded JSON value, whether it holds a float, and
    its depth (the deepest nesting of objects and arrays, as ``_depth_exceeds`` counts it)."""
    names = 0
    floats = False
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict or kind is list:
            if depth > deepest:
                deepest = depth
            if kind is dict:
                names += len(item)
                item = item.values()
            stack.extend([(child, depth + 1) for child in item])
        elif kind is float:
            floats = True
    return names, floats, deepest


def _fast_json_object(raw: bytes) -> dict[str, Any] | None:
    """orjson's reading of ``raw`` when it provably equals the strict decoder's, else None.

    orjson (C) is as strict as the pure-Python decoder below except on three points, each
    ruled out here, and None hands the input to the strict decoder, which decides (and words
    every error): it keeps the last of duplicate member names, it reads an integer beyond 64
    bits as a float, and it nests up to 1024 levels where we allow 20.

    Duplicates without scanning the text: in valid JSON a member name ends with an unescaped
    quote followed by ``:`` or by whitespace then ``:``, so the text has at most as many
    members as it has ``"`` followed by ``:``, a space, TAB, LF or CR. An escaped quote, or a
    string value that starts with one of these, only adds to that bound, never hides a
    member. Objects that lost a duplicate hold fewer names than their text has members, so a
    decoded value with as many names as the bound has none: escapes (``\\u0061`` for ``a``),
    nesting and whitespace cannot hide one. When the bound is larger the strict decoder
    decides: slower, never wrong. A flat object (no nested value, no float) is first held to
    a cheaper bound of the same kind: the commas of the text plus one.
    """
    if _c_loads is None:  # pragma: no cover - orjson is a dependency on CPython
        return None
    try:
        value = _c_loads(raw)
    except ValueError:  # orjson.JSONDecodeError; also invalid UTF-8 and lone surrogates
        return None
    if type(value) is not dict:
        return None
    if _NESTED_OR_FLOAT.isdisjoint(map(type, value.values())):
        names = len(value)  # the common flat payload: one object, depth 1, no float
        # The cheaper bound first: the top-level object's k members are separated by k - 1
        # commas, and every other comma (in a string, in a nested value that a duplicate
        # replaced) only adds to the count; so as many names as commas + 1 means k names.
        if names == raw.count(b",") + 1:
            return _without_lone_surrogate(raw, value)
    else:
        names, floats, depth = _count_names(value)
        if depth > _MAX_JSON_DEPTH:
            return None
        # orjson reads an integer beyond 64 bits (19 digits or more) as a float.
        if floats and _LONG_DIGIT_RUN in raw.translate(_DIGITS_TO_ZERO):
            return None
    bound = raw.count(b'":') + raw.count(b'" ')
    # TAB, LF and CR may only stand between tokens (inside strings they must be escaped).
    # Integer membership is a plain memchr, many times faster than a one-byte substring.
    if 9 in raw or 10 in raw or 13 in raw:
        bound += raw.count(b'"\t') + raw.count(b'"\n') + raw.count(b'"\r')
    if names != bound:
        return None
    return _without_lone_surrogate(raw, value)


def _without_lone_surrogate(raw: bytes, value: dict[str, Any]) -> dict[str, Any] | None:
    if 92 in raw and b"\\u" in raw and _has_lone_surrogate(value):  # pragma: no cover
        return None  # orjson refuses unpaired surrogates; this keeps the promise without it
    return value


def strict_json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Parse UTF-8 JSON that must be an object, with unique member names and bounded depth.

    NaN and Infinity literals, duplicate member names, nesting deeper than 20 levels and
    unpaired surrogate escapes are all refused with ``MalformedToken``. orjson reads the
    input when it is installed and provably agrees (``_fast_json_object``); the strict
    pure-Python decoder reads everything else.
    """
    # orjson's own depth limit (1024) bounds its work; ours is checked on what it returns.
    value = _fast_json_object(raw)
    if value is not None:
        return value
    return _strict_json_object(raw, what)


def _strict_json_object(raw: bytes, what: str) -> dict[str, Any]:
    """The pure-Python strict decoder: the reference, and the path for whatever orjson is not."""
    if _depth_exceeds(raw, _MAX_JSON_DEPTH):
        raise MalformedToken(f"The access token {what} is nested too deeply")
    try:
        value = _decode_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedToken(f"The access token {what} is not valid JSON") from exc
    if type(value) is not dict:
        raise MalformedToken(f"The access token {what} is not a JSON object")
    if b"\\u" in raw and _has_lone_surrogate(value):
        raise MalformedToken(f"The access token {what} is not valid JSON")
    return value


def split_compact(token: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a compact JWS into its three base64url segments, refusing anything else.

    Raises:
        MalformedToken: Not three strict base64url segments (reason ``malformed``), or a
            five-segment JWE (reason ``encrypted_token``).
    """
    parts = token.split(b".")
    # Deleting every allowed byte leaves nothing for a well-formed token: one C pass, several
    # times faster than a regular expression over a 1 KiB token.
    if len(parts) != 3 or token.translate(None, _COMPACT_ALPHABET) or not parts[0] or not parts[1]:
        if len(parts) == 5:
            raise MalformedToken(
                "Encrypted tokens (JWE) are not accepted", reason="encrypted_token"
            )
        raise MalformedToken("The access token is not a compact JWS")
    header_b64, payload_b64, signature_b64 = parts
    return header_b64, payload_b64, signature_b64


def split_standard(token: bytes) -> tuple[bytes, bytes, bytes]:
    """``split_compact`` in one translate pass, each segment turned into standard base64.

    The segments are for ``standard_b64_decode``; their lengths are those of the token's, so
    the signing input is still ``token[: len(header) + 1 + len(payload)]``.

    Raises:
        MalformedToken: As ``split_compact`` does, with the same reasons.
    """
    standard = token.translate(_CHECKED_STANDARD)
    parts = standard.split(b".")
    if len(parts) != 3 or 33 in standard or not parts[0] or not parts[1]:
        split_compact(token)  # the same conditions: it raises the precise error
        raise MalformedToken("The access token is not a compact JWS")  # pragma: no cover
    header, payload, signature = parts
    return header, payload, signature


def parse_compact(
    token: bytes, header_cache: dict[bytes, dict[str, Any]] | None = None
) -> ParsedToken:
    """Split and decode a compact JWS; the size bound is the caller's job.

    Tokens from one issuer share a handful of headers, so a caller may pass a dict in which
    parsed headers are kept (at most 64; it is cleared when full) and reused.
    """
    header_b64, payload_b64, signature_b64 = split_compact(token)
    header = header_cache.get(header_b64) if header_cache is not None else None
    if header is None:
        header = strict_json_object(b64url_decode(header_b64), "header")
        if header_cache is not None:
            if len(header_cache) >= _HEADER_CACHE_SIZE:
                header_cache.clear()
            header_cache[header_b64] = header
    payload_json = b64url_decode(payload_b64)
    return ParsedToken(
        header=header,
        payload=strict_json_object(payload_json, "payload"),
        signing_input=token[: len(header_b64) + 1 + len(payload_b64)],
        signature=b64url_decode(signature_b64),
        payload_json=payload_json,
    )


def is_finite_number(value: object) -> bool:
    """True for JSON numbers (int or float, not bool) that are finite."""
    kind = type(value)
    if kind is int:
        return True
    return kind is float and math.isfinite(value)  # type: ignore[arg-type]
