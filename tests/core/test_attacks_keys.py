"""The attack table, keys and signatures: algorithm confusion, keys named by untrusted header
parameters, kid tricks, tampered signatures and JWK Set entries that must never be used.

Each row is refused with its exact ``reason``; the machinery is in tests/core/_attacks.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from jwkguard._parse import b64url_decode
from jwkguard.testing import b64url, sign_compact

from ._attacks import (
    SECRET,
    Case,
    Context,
    assert_refused,
    assert_refused_async,
    base_claims,
    hs256_with,
    segment_swap,
)
from .test_attacks_claims import CASES as CLAIM_CASES
from .test_attacks_encoding import CASES as ENCODING_CASES

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _ecdsa_signature(transform: Callable[[bytes, int, int], bytes]) -> Callable[[Context], str]:
    """An ES256 token whose valid signature is rewritten by ``transform(der, r, s)``."""

    def build(ctx: Context) -> str:
        token = ctx.sign({}, key=ctx.ec)
        signing_input = token.rsplit(".", 1)[0]
        from cryptography.hazmat.primitives import hashes

        der = ctx.ec.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(der)
        return f"{signing_input}.{b64url(transform(der, r, s))}"

    return build


def _fixed(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _alg_none(casing: str) -> Case:
    return Case(
        lambda ctx: sign_compact({"alg": casing, "typ": "at+jwt"}, base_claims()),
        "algorithm_not_allowed",
        "alg",
    )


def _alg_none_with_signature(casing: str) -> Case:
    return Case(
        lambda ctx: sign_compact({"alg": casing}, base_claims()) + "c2lnbmF0dXJl",
        "algorithm_not_allowed",
        "alg",
    )


CASES: dict[str, Case] = {
    # -- alg "none" and algorithm confusion ------------------------------------------------
    **{f"alg-{casing}": _alg_none(casing) for casing in ("none", "None", "NONE", "nOnE", "NoNe")},
    **{f"alg-{casing}-signed": _alg_none_with_signature(casing) for casing in ("none", "NONE")},
    "alg-missing": Case(
        lambda ctx: sign_compact({"typ": "JWT"}, base_claims()), "algorithm_not_allowed", "alg"
    ),
    "alg-lowercase-rs256": Case(
        lambda ctx: ctx.sign({"alg": "rs256"}), "algorithm_not_allowed", "alg"
    ),
    "alg-trailing-space": Case(
        lambda ctx: ctx.sign({"alg": "RS256 "}), "algorithm_not_allowed", "alg"
    ),
    "alg-as-list": Case(lambda ctx: ctx.sign({"alg": ["RS256"]}), "algorithm_not_allowed", "alg"),
    "alg-not-configured-ps256": Case(
        lambda ctx: ctx.sign({"alg": "PS256"}), "algorithm_not_allowed", "alg"
    ),
    "alg-es256-with-rsa-kid": Case(lambda ctx: ctx.sign({"alg": "ES256"}), "unknown_key"),
    "hs256-signed-with-rsa-public-pem": Case(
        hs256_with(Context.rsa_pem, "rsa-1"), "algorithm_not_allowed", "alg"
    ),
    "hs256-signed-with-rsa-public-jwk-json": Case(
        hs256_with(lambda ctx: json.dumps(dict(ctx.rsa.public_jwk)).encode(), None),
        "algorithm_not_allowed",
        "alg",
    ),
    "hs256-pem-when-hmac-only-for-another-issuer": Case(
        hs256_with(Context.rsa_pem, "rsa-1"), "unknown_key", validator="hmac-elsewhere"
    ),
    "hs256-pem-no-kid-when-hmac-only-for-another-issuer": Case(
        hs256_with(Context.rsa_pem, None), "unknown_key", validator="hmac-elsewhere"
    ),
    "hs256-pem-with-rsa-kid-beside-a-secret": Case(
        hs256_with(Context.rsa_pem, "rsa-1"), "unknown_key", validator="hmac-same-issuer"
    ),
    "hs256-pem-no-kid-beside-a-secret": Case(
        hs256_with(Context.rsa_pem, None), "bad_signature", validator="hmac-same-issuer"
    ),
    # -- oct keys in a JWK Set ------------------------------------------------------------
    "oct-jwk-in-jwks-hs256-not-allowed": Case(
        hs256_with(lambda ctx: SECRET, "oct-1"), "algorithm_not_allowed", "alg", "oct-in-jwks"
    ),
    "oct-jwk-in-jwks-hs256-allowed-elsewhere": Case(
        hs256_with(lambda ctx: SECRET, "oct-1"), "unknown_key", validator="hmac-elsewhere"
    ),
    # -- keys named by header parameters that are never trusted ---------------------------
    "embedded-jwk-attacker-kid": Case(
        lambda ctx: ctx.sign({"jwk": dict(ctx.attacker.public_jwk)}, key=ctx.attacker),
        "unknown_key",
    ),
    "embedded-jwk-no-kid": Case(
        lambda ctx: sign_compact(
            {"alg": "RS256", "jwk": dict(ctx.attacker.public_jwk)}, base_claims(), key=ctx.attacker
        ),
        "unknown_key",
    ),
    "embedded-jwk-with-trusted-kid": Case(
        lambda ctx: sign_compact(
            {"alg": "RS256", "kid": "rsa-1", "jwk": dict(ctx.attacker.public_jwk)},
            base_claims(),
            key=ctx.attacker,
        ),
        "bad_signature",
    ),
    **{
        f"{param}-no-kid": Case(
            lambda ctx, param=param, value=value: sign_compact(
                {"alg": "RS256", param: value}, base_claims(), key=ctx.attacker
            ),
            "unknown_key",
        )
        for param, value in (
            ("jku", "https://attacker.example/jwks.json"),
            ("x5u", "https://attacker.example/cert.pem"),
            ("x5c", ["MIIBszCCAVmgAwIBAgIUY2VydGlmaWNhdGU="]),
        )
    },
    "jku-with-attacker-kid": Case(
        lambda ctx: ctx.sign({"jku": "https://attacker.example/jwks.json"}, key=ctx.attacker),
        "unknown_key",
    ),
    "x5c-with-trusted-kid": Case(
        lambda ctx: sign_compact(
            {"alg": "RS256", "kid": "rsa-1", "x5c": ["MIIBszCCAVmgAwIBAgIU"]},
            base_claims(),
            key=ctx.attacker,
        ),
        "bad_signature",
    ),
    # -- kid tricks -------------------------------------------------------------------------
    **{
        f"kid-{name}": Case(lambda ctx, kid=kid: ctx.sign({"kid": kid}), "unknown_key")
        for name, kid in (
            ("path-traversal", "../../../../../../dev/null"),
            ("absolute-path", "/etc/passwd"),
            ("sql-injection", "x' UNION SELECT 'secret"),
            ("nul-byte", "rsa-1\u0000"),
            ("empty", ""),
            ("very-long", "k" * 4000),
        )
    },
    "kid-number": Case(lambda ctx: ctx.sign({"kid": 1}), "invalid_header", "kid"),
    "kid-null": Case(lambda ctx: ctx.sign({"kid": None}), "invalid_header", "kid"),
    "kid-object": Case(lambda ctx: ctx.sign({"kid": {"$ne": ""}}), "invalid_header", "kid"),
    # -- signature tampering ------------------------------------------------------------------
    "payload-changed-after-signing": Case(
        lambda ctx: ".".join(
            [
                ctx.good().split(".")[0],
                b64url(json.dumps(base_claims(sub="admin")).encode()),
                ctx.good().split(".")[2],
            ]
        ),
        "bad_signature",
    ),
    "signature-empty": Case(lambda ctx: ctx.good().rsplit(".", 1)[0] + ".", "bad_signature"),
    "signature-truncated": Case(
        segment_swap(2, lambda s: b64url(b64url_decode(s.encode())[:-1])), "bad_signature"
    ),
    "signature-from-other-key-same-kid": Case(
        lambda ctx: ctx.sign({}, key=ctx.twin), "bad_signature"
    ),
    "ecdsa-der-signature": Case(_ecdsa_signature(lambda der, r, s: der), "bad_signature"),
    "ecdsa-r-s-zero": Case(_ecdsa_signature(lambda der, r, s: bytes(64)), "bad_signature"),
    "ecdsa-s-equals-order": Case(
        _ecdsa_signature(lambda der, r, s: _fixed(r, P256_ORDER)), "bad_signature"
    ),
    "ecdsa-r-equals-order": Case(
        _ecdsa_signature(lambda der, r, s: _fixed(P256_ORDER, s)), "bad_signature"
    ),
    "ecdsa-signature-too-long": Case(
        _ecdsa_signature(lambda der, r, s: b"\x00" + _fixed(r, s)), "bad_signature"
    ),
    # -- keys that a JWK Set holds but must never be used -------------------------------------
    "jwks-private-key-entry": Case(
        lambda ctx: ctx.sign({"kid": "priv"}, key=ctx.attacker),
        "unknown_key",
        validator="dirty-jwks",
    ),
    "jwks-rsa-1024": Case(
        lambda ctx: ctx.sign({}, key=ctx.weak), "unknown_key", validator="dirty-jwks"
    ),
    "jwks-duplicate-kid": Case(lambda ctx: ctx.good(), "ambiguous_key", validator="dirty-jwks"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_attack_token_is_refused_with_its_reason(case: Case, ctx: Context) -> None:
    assert_refused(case, ctx)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "name", ["alg-none", "jwks-duplicate-kid", "exp-string", "multi-megabyte-token", "input-none"]
)
async def test_avalidate_refuses_attack_tokens_with_the_same_reason(
    name: str, ctx: Context
) -> None:
    case = {**CASES, **CLAIM_CASES, **ENCODING_CASES}[name]
    await assert_refused_async(case, ctx)


def test_the_good_token_of_the_table_is_accepted(ctx: Context) -> None:
    """Guards the table: its rows fail for the reason they name, not for a broken base token."""
    for name in ("default", "typed", "hmac-same-issuer", "dirty-jwks"):
        validator = ctx.validator(name)
        token = ctx.sign({}, key=ctx.ec) if name == "dirty-jwks" else ctx.good()
        assert validator.validate(token).subject == "user-123"


def test_hmac_secret_validates_its_own_tokens_beside_a_jwks(ctx: Context) -> None:
    validator = ctx.validator("hmac-same-issuer")
    token = hs256_with(lambda ctx: SECRET, None)(ctx)
    claims = validator.validate(token)
    assert claims.key_id is None
    assert claims.header["alg"] == "HS256"
