"""The attack table, claims: time claims of the wrong type, issuer and audience near-misses,
and ``typ`` confusion.

Each row is refused with its exact ``reason``; the machinery is in tests/core/_attacks.py.
"""

from __future__ import annotations

import json

import pytest

from jwkguard.testing import sign_compact

from ..conftest import AUDIENCE, ISSUER
from ._attacks import NOW, UNSET, Case, Context, assert_refused, base_claims


def _with_literal(claim: str, literal: bytes) -> bytes:
    """The standard claims with ``claim`` spelled as the raw JSON text ``literal``."""
    raw = json.dumps(base_claims(**{claim: 0})).encode()
    return raw.replace(f'"{claim}": 0'.encode(), f'"{claim}": '.encode() + literal)


CASES: dict[str, Case] = {
    # -- time claims of the wrong type --------------------------------------------------------
    **{
        f"{claim}-{name}": Case(
            lambda ctx, claim=claim, value=value: ctx.good(**{claim: value}), reason, claim
        )
        for claim in ("exp", "nbf", "iat")
        for name, value, reason in (
            ("string", str(NOW + 300), "invalid_claim"),
            ("iso-string", "2027-01-15T08:00:00Z", "invalid_claim"),
            ("true", True, "invalid_claim"),
            ("false", False, "invalid_claim"),
            ("null", None, "invalid_claim"),
            ("list", [NOW + 300], "invalid_claim"),
            ("object", {"$date": NOW}, "invalid_claim"),
            ("10-pow-20", 10**20, "invalid_claim"),
            ("negative", -1, "invalid_claim"),
        )
    },
    **{
        f"{claim}-literal-{literal.decode()}": Case(
            lambda ctx, claim=claim, literal=literal: ctx.sign({}, _with_literal(claim, literal)),
            reason,
            *(() if reason == "malformed" else (claim,)),
        )
        for claim in ("exp", "nbf", "iat")
        for literal, reason in (
            # Not JSON at all (RFC 8259 has no NaN or Infinity): refused by the parser.
            (b"NaN", "malformed"),
            (b"Infinity", "malformed"),
            (b"-Infinity", "malformed"),
            # JSON numbers that overflow a double, or are far beyond year 9999.
            (b"1e999", "invalid_claim"),
            (b"-1e999", "invalid_claim"),
            (b"1E400", "invalid_claim"),
            (b"100000000000000000000", "invalid_claim"),
            (b"1.8e9e1", "malformed"),
        )
    },
    # -- issuer and audience near-misses ------------------------------------------------------
    **{
        f"iss-{name}": Case(lambda ctx, iss=iss: ctx.good(iss=iss), "issuer_mismatch", "iss")
        for name, iss in (
            ("no-trailing-slash", ISSUER.rstrip("/")),
            ("double-trailing-slash", ISSUER + "/"),
            ("uppercase", ISSUER.upper()),
            ("http-scheme", ISSUER.replace("https", "http")),
            ("trailing-space", ISSUER + " "),
            ("subdomain", "https://id.example.com.evil.example/"),
            ("as-list", [ISSUER]),
            ("null", None),
        )
    },
    "iss-missing": Case(lambda ctx: ctx.good(iss=UNSET), "missing_claim", "iss"),
    **{
        f"aud-{name}": Case(lambda ctx, aud=aud: ctx.good(aud=aud), reason, "aud")
        for name, aud, reason in (
            ("trailing-slash", AUDIENCE + "/", "audience_mismatch"),
            ("uppercase", AUDIENCE.upper(), "audience_mismatch"),
            ("prefix", AUDIENCE[:-1], "audience_mismatch"),
            (
                "list-without-match",
                ["https://other.example.com", AUDIENCE + "/"],
                "audience_mismatch",
            ),
            ("empty-list", [], "invalid_claim"),
            ("nested-list", [[AUDIENCE]], "invalid_claim"),
            ("number", 1, "invalid_claim"),
            ("object", {"aud": AUDIENCE}, "invalid_claim"),
            ("null", None, "missing_claim"),
        )
    },
    "aud-missing": Case(lambda ctx: ctx.good(aud=UNSET), "missing_claim", "aud"),
    # -- typ confusion ----------------------------------------------------------------------
    **{
        f"typ-{name}-required-at-jwt": Case(
            lambda ctx, typ=typ: ctx.sign({"typ": typ}), "wrong_type", "typ", "typed"
        )
        for name, typ in (
            ("jwt", "JWT"),
            ("dpop", "dpop+jwt"),
            ("id-token-like", "id_token+jwt"),
            ("other-media-prefix", "text/at+jwt"),
            ("number", 1),
            ("null", None),
        )
    },
    "typ-missing-required-at-jwt": Case(
        lambda ctx: sign_compact({"alg": "RS256", "kid": "rsa-1"}, base_claims(), key=ctx.rsa),
        "wrong_type",
        "typ",
        "typed",
    ),
    **{
        f"typ-{typ}-never-an-access-token": Case(
            lambda ctx, typ=typ: ctx.sign({"typ": typ}), "wrong_type", "typ"
        )
        for typ in ("dpop+jwt", "secevent+jwt", "logout+jwt", "application/logout+jwt", "kb+jwt")
    },
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_attack_token_is_refused_with_its_reason(case: Case, ctx: Context) -> None:
    assert_refused(case, ctx)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_at_jwt_is_accepted_in_every_spelling_rfc_9068_allows(typ: str, ctx: Context) -> None:
    validator = ctx.validator("typed")
    assert validator.validate(ctx.sign({"typ": typ})).header["typ"] == typ
