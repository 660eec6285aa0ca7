"""The attack table, encoding: ``crit`` and ``b64``, tokens that are not a compact JWS,
malformed base64url and JSON, the size bound, values that are not text; and the input forms a
token may take, with the header cache that remembers refusals.

Each row is refused with its exact ``reason``; the machinery is in tests/core/_attacks.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from jwkguard import Issuer, TokenError, Validator
from jwkguard.testing import b64url, sign_compact

from ..conftest import AUDIENCE, ISSUER
from ._attacks import NOW, Case, Context, assert_refused, base_claims, segment_swap


def _raw_token(
    header: bytes | dict[str, Any], payload: bytes | dict[str, Any]
) -> Callable[[Context], str]:
    """A token with exact header/payload bytes, correctly RS256-signed."""

    def build(ctx: Context) -> str:
        return sign_compact(header, payload, key=ctx.rsa)

    return build


def _noncanonical(segment: str) -> str:
    """Change only the unused trailing bits of the last character (same decoded bytes)."""
    assert len(segment) % 4 in (2, 3)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    value = alphabet.index(segment[-1])
    return segment[:-1] + alphabet[value | 1]


def _noncanonical_segment(index: int) -> Callable[[Context], str]:
    """A valid token whose segment ``index`` is re-spelled with non-zero trailing bits."""

    def build(ctx: Context) -> str:
        for filler in ("x", "xx", "xxx"):
            # Vary a length until the segment has unused trailing bits to set.
            token = ctx.sign({"x": filler}, base_claims(jti=filler))
            parts = token.split(".")
            if len(parts[index]) % 4 in (2, 3):
                parts[index] = _noncanonical(parts[index])
                return ".".join(parts)
        raise AssertionError("no filler gives trailing bits")

    return build


def _nested(depth: int) -> bytes:
    claims = json.dumps(base_claims()).encode()
    return claims[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"


CASES: dict[str, Case] = {
    # -- crit and b64 -------------------------------------------------------------------------
    "crit-exp": Case(
        lambda ctx: ctx.sign({"crit": ["exp"], "exp": NOW}), "unsupported_critical", "crit"
    ),
    "crit-empty": Case(lambda ctx: ctx.sign({"crit": []}), "unsupported_critical", "crit"),
    "crit-unknown-extension": Case(
        lambda ctx: ctx.sign({"crit": ["http://example.com/ext"], "http://example.com/ext": 1}),
        "unsupported_critical",
        "crit",
    ),
    "b64-false": Case(lambda ctx: ctx.sign({"b64": False}), "unencoded_payload", "b64"),
    "b64-false-with-crit": Case(
        lambda ctx: ctx.sign({"b64": False, "crit": ["b64"]}), "unencoded_payload", "b64"
    ),
    # -- not a compact JWS --------------------------------------------------------------------
    "jwe-five-segments": Case(
        lambda ctx: ".".join(
            [b64url(b'{"alg":"RSA-OAEP","enc":"A256GCM"}'), "a" * 20, "b" * 16, "c" * 30, "d" * 22]
        ),
        "encrypted_token",
    ),
    "two-segments": Case(lambda ctx: ".".join(ctx.good().split(".")[:2]), "malformed"),
    "four-segments": Case(lambda ctx: ctx.good() + ".e30", "malformed"),
    "empty-string": Case(lambda ctx: "", "malformed"),
    "only-dots": Case(lambda ctx: "..", "malformed"),
    "empty-header-segment": Case(lambda ctx: "." + ctx.good().split(".", 1)[1], "malformed"),
    "leading-space": Case(lambda ctx: " " + ctx.good(), "malformed"),
    "bearer-prefix-left-in": Case(lambda ctx: "Bearer " + ctx.good(), "malformed"),
    "non-ascii-text": Case(lambda ctx: ctx.good()[:-2] + "é", "malformed"),
    # -- malformed base64url ------------------------------------------------------------------
    "padding-in-signature": Case(
        segment_swap(2, lambda s: s + "=" * (-len(s) % 4 or 4)), "malformed"
    ),
    "padding-in-payload": Case(segment_swap(1, lambda s: s + "=="), "malformed"),
    "standard-alphabet-plus": Case(segment_swap(2, lambda s: "+" + s[1:]), "malformed"),
    "standard-alphabet-slash": Case(segment_swap(1, lambda s: "/" + s[1:]), "malformed"),
    "segment-length-1-mod-4": Case(
        segment_swap(2, lambda s: s[: len(s) - len(s) % 4] + "A"), "malformed"
    ),
    "non-canonical-header-bits": Case(_noncanonical_segment(0), "malformed"),
    "non-canonical-payload-bits": Case(_noncanonical_segment(1), "malformed"),
    "non-canonical-signature-bits": Case(_noncanonical_segment(2), "malformed"),
    # -- JSON -------------------------------------------------------------------------------
    "duplicate-alg-in-header": Case(
        _raw_token(b'{"alg":"none","alg":"RS256","kid":"rsa-1"}', base_claims()), "malformed"
    ),
    "duplicate-exp-in-payload": Case(
        lambda ctx: sign_compact(
            {"alg": "RS256", "kid": "rsa-1"},
            json.dumps(base_claims()).encode()[:-1] + f', "exp": {NOW + 10**6}}}'.encode(),
            key=ctx.rsa,
        ),
        "malformed",
    ),
    "duplicate-iss-in-payload": Case(
        lambda ctx: sign_compact(
            {"alg": "RS256", "kid": "rsa-1"},
            b'{"iss": "https://evil.example/", ' + json.dumps(base_claims()).encode()[1:],
            key=ctx.rsa,
        ),
        "malformed",
    ),
    "header-is-array": Case(_raw_token(b'["RS256"]', base_claims()), "malformed"),
    "header-is-string": Case(_raw_token(b'"RS256"', base_claims()), "malformed"),
    "payload-is-array": Case(lambda ctx: ctx.sign({}, [base_claims()]), "malformed"),
    "payload-is-string": Case(lambda ctx: ctx.sign({}, b'"sub"'), "malformed"),
    "payload-is-number": Case(lambda ctx: ctx.sign({}, b"1800000000"), "malformed"),
    "payload-is-null": Case(lambda ctx: ctx.sign({}, b"null"), "malformed"),
    "payload-not-json": Case(lambda ctx: ctx.sign({}, b"exp=1800000300"), "malformed"),
    "payload-invalid-utf8": Case(lambda ctx: ctx.sign({}, b'{"sub": "\xff"}'), "malformed"),
    "payload-utf8-bom": Case(
        lambda ctx: ctx.sign({}, b"\xef\xbb\xbf" + json.dumps(base_claims()).encode()), "malformed"
    ),
    "payload-trailing-garbage": Case(
        lambda ctx: ctx.sign({}, json.dumps(base_claims()).encode() + b"x"), "malformed"
    ),
    "payload-lone-surrogate": Case(
        lambda ctx: ctx.sign({}, json.dumps(base_claims(sub="\ud800")).encode()), "malformed"
    ),
    "deep-nesting-within-size": Case(lambda ctx: ctx.sign({}, _nested(40)), "malformed"),
    "deep-nesting-large-token": Case(
        lambda ctx: ctx.sign({}, _nested(200_000)), "malformed", validator="large"
    ),
    "huge-integer-literal": Case(
        lambda ctx: ctx.sign({}, b'{"exp": 1' + b"0" * 5000 + b"}"), "malformed", validator="large"
    ),
    # -- size ---------------------------------------------------------------------------------
    "multi-megabyte-token": Case(lambda ctx: ctx.good() + "A" * (3 << 20), "token_too_large"),
    "multi-megabyte-claims": Case(lambda ctx: ctx.good(blob="x" * (2 << 20)), "token_too_large"),
    "multi-megabyte-bytes": Case(lambda ctx: b"A" * (3 << 20), "token_too_large"),
    "multi-megabyte-garbage": Case(lambda ctx: "\x00" * (3 << 20), "token_too_large"),
    # -- not text at all ----------------------------------------------------------------------
    **{
        f"input-{name}": Case(lambda ctx, value=value: value, "malformed")
        for name, value in (
            ("none", None),
            ("int", 12345),
            ("float", 1.5),
            ("list", ["a.b.c"]),
            ("dict", {"token": "a.b.c"}),
            ("object", object()),
        )
    },
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_attack_token_is_refused_with_its_reason(case: Case, ctx: Context) -> None:
    assert_refused(case, ctx)


# -- input forms, the size bound and the header cache -------------------------------------------


def test_a_token_of_exactly_the_size_bound_is_parsed_and_one_byte_more_is_not(
    ctx: Context,
) -> None:
    token = ctx.good()
    validator = Validator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks=ctx.jwks())],
        algorithms=["RS256"],
        clock=lambda: float(NOW + 10),
        max_token_size=len(token),
    )
    assert validator.validate(token).subject == "user-123"
    with pytest.raises(TokenError) as caught:
        validator.validate(token + "A")
    assert caught.value.reason == "token_too_large"


@pytest.mark.parametrize("form", [str, bytes, bytearray, memoryview])
def test_a_token_may_be_text_or_bytes(form: Any, ctx: Context) -> None:
    token = ctx.good()
    value = token if form is str else form(token.encode())
    assert ctx.validator("default").validate(value).subject == "user-123"


def test_a_str_subclass_is_a_token(ctx: Context) -> None:
    class Text(str):
        pass

    assert ctx.validator("default").validate(Text(ctx.good())).subject == "user-123"


def test_a_header_refused_once_is_refused_every_time(ctx: Context) -> None:
    validator = ctx.validator("default")
    token = ctx.sign({"crit": ["exp"]})
    for _ in range(3):
        with pytest.raises(TokenError) as caught:
            validator.validate(token)
        assert caught.value.reason == "unsupported_critical"


def test_the_header_cache_is_per_validator_policy(ctx: Context) -> None:
    token = ctx.good()
    lenient = ctx.new_validator("default")
    strict = Validator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks=ctx.jwks())],
        algorithms=["ES256"],
        clock=lambda: float(NOW + 10),
    )
    assert lenient.validate(token)
    with pytest.raises(TokenError) as caught:
        strict.validate(token)
    assert caught.value.reason == "algorithm_not_allowed"


def test_many_distinct_headers_keep_the_header_cache_bounded(ctx: Context) -> None:
    validator = ctx.new_validator("default")
    for number in range(150):
        assert validator.validate(ctx.sign({"n": number}))
    assert len(validator._headers) <= 64
