"""The attack table: hostile and broken tokens, each refused with its exact ``reason``.

Every row builds one token (with real keys and real signatures where a signature matters),
validates it with one of a few validators, and checks the refusal: a ``TokenError`` with the
expected ``reason`` (and ``claim`` where one is at fault), an RFC 6750 ``error`` code, a status,
and a description that never echoes the token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jwkguard import Issuer, TokenError, Validator
from jwkguard._parse import b64url_decode
from jwkguard.testing import SigningKey, b64url, generate_key, sign_compact

from ..conftest import AUDIENCE, ISSUER

NOW = 1_800_000_000
OTHER_ISSUER = "https://other.example.com/"
SECRET = b"s" * 32
UNSET = object()
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-123",
        "aud": AUDIENCE,
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 300,
        "jti": "token-1",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not UNSET}


class Context:
    """Keys and validators shared by the whole table (keys are slow to generate)."""

    @cached_property
    def rsa(self) -> SigningKey:
        return generate_key("RS256", kid="rsa-1")

    @cached_property
    def ec(self) -> SigningKey:
        return generate_key("ES256", kid="ec-1")

    @cached_property
    def attacker(self) -> SigningKey:
        return generate_key("RS256", kid="attacker")

    @cached_property
    def weak(self) -> SigningKey:
        return generate_key("RS256", kid="weak", rsa_bits=1024)

    @cached_property
    def twin(self) -> SigningKey:
        return generate_key("RS256", kid="rsa-1")

    @cached_property
    def private_jwk(self) -> dict[str, Any]:
        from joserfc.jwk import RSAKey

        jwk = RSAKey.import_key(self.attacker.private_key).as_dict(private=True)
        return {**jwk, "kid": "priv", "alg": "RS256", "use": "sig"}

    def rsa_pem(self) -> bytes:
        return bytes(
            self.rsa.private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def sign(
        self, header: dict[str, Any], payload: Any = None, key: SigningKey | None = None
    ) -> str:
        key = key or self.rsa
        return sign_compact(
            {"alg": key.alg, "kid": key.kid, "typ": "at+jwt", **header},
            _claims() if payload is None else payload,
            key=key,
        )

    def good(self, **claims: Any) -> str:
        return self.sign({}, _claims(**claims))

    def jwks(self, *extra: dict[str, Any]) -> dict[str, Any]:
        return {"keys": [dict(self.rsa.public_jwk), dict(self.ec.public_jwk), *extra]}

    def validator(self, name: str) -> Validator:
        clock = lambda: float(NOW + 10)  # noqa: E731
        base: dict[str, Any] = {"algorithms": ["RS256", "ES256", "EdDSA"], "clock": clock}
        issuer = Issuer(ISSUER, audiences=[AUDIENCE], jwks=self.jwks())
        if name == "default":
            return Validator(issuers=[issuer], **base)
        if name == "typed":
            return Validator(issuers=[issuer], token_type="at+jwt", **base)
        if name == "large":
            return Validator(issuers=[issuer], max_token_size=1 << 20, **base)
        if name == "hmac-elsewhere":
            # HS256 is allowed, but only for another issuer that has an explicit secret.
            other = Issuer(OTHER_ISSUER, audiences=[AUDIENCE], secret=SECRET)
            base["algorithms"] = ["RS256", "HS256"]
            return Validator(issuers=[issuer, other], **base)
        if name == "hmac-same-issuer":
            both = Issuer(ISSUER, audiences=[AUDIENCE], jwks=self.jwks(), secret=SECRET)
            base["algorithms"] = ["RS256", "HS256"]
            return Validator(issuers=[both], **base)
        if name == "oct-in-jwks":
            oct_jwk = {"kty": "oct", "kid": "oct-1", "k": b64url(SECRET), "alg": "HS256"}
            return Validator(
                issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks=self.jwks(oct_jwk))], **base
            )
        if name == "dirty-jwks":
            # A JWK Set holding a private key, an RSA-1024 key and two keys sharing a kid.
            extra = (self.private_jwk, dict(self.weak.public_jwk), dict(self.twin.public_jwk))
            dirty = Issuer(ISSUER, audiences=[AUDIENCE], jwks=self.jwks(*extra))
            return Validator(issuers=[dirty], **base)
        raise AssertionError(name)


@dataclass(frozen=True)
class Case:
    build: Callable[[Context], Any]
    reason: str
    claim: object = UNSET
    validator: str = "default"


def _b64(raw: bytes) -> str:
    return b64url(raw)


def _raw_token(
    header: bytes | dict[str, Any], payload: bytes | dict[str, Any]
) -> Callable[[Context], str]:
    """A token with exact header/payload bytes, correctly RS256-signed."""

    def build(ctx: Context) -> str:
        return sign_compact(header, payload, key=ctx.rsa)

    return build


def _segment_swap(index: int, replace: Callable[[str], str]) -> Callable[[Context], str]:
    def build(ctx: Context) -> str:
        parts = ctx.good().split(".")
        parts[index] = replace(parts[index])
        return ".".join(parts)

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
            token = ctx.sign({"x": filler}, _claims(jti=filler))
            parts = token.split(".")
            if len(parts[index]) % 4 in (2, 3):
                parts[index] = _noncanonical(parts[index])
                return ".".join(parts)
        raise AssertionError("no filler gives trailing bits")

    return build


def _hs256_with(secret_of: Callable[[Context], bytes], kid: str | None) -> Callable[[Context], str]:
    def build(ctx: Context) -> str:
        header: dict[str, Any] = {"alg": "HS256", "typ": "at+jwt"}
        if kid is not None:
            header["kid"] = kid
        return sign_compact(header, _claims(), secret=secret_of(ctx), alg="HS256")

    return build


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


def _with_literal(claim: str, literal: bytes) -> bytes:
    """The standard claims with ``claim`` spelled as the raw JSON text ``literal``."""
    raw = json.dumps(_claims(**{claim: 0})).encode()
    return raw.replace(f'"{claim}": 0'.encode(), f'"{claim}": '.encode() + literal)


def _nested(depth: int) -> bytes:
    claims = json.dumps(_claims()).encode()
    return claims[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"


def _alg_none(casing: str) -> Case:
    return Case(
        lambda ctx: sign_compact({"alg": casing, "typ": "at+jwt"}, _claims()),
        "algorithm_not_allowed",
        "alg",
    )


def _alg_none_with_signature(casing: str) -> Case:
    return Case(
        lambda ctx: sign_compact({"alg": casing}, _claims()) + "c2lnbmF0dXJl",
        "algorithm_not_allowed",
        "alg",
    )


CASES: dict[str, Case] = {
    # -- alg "none" and algorithm confusion ------------------------------------------------
    **{f"alg-{casing}": _alg_none(casing) for casing in ("none", "None", "NONE", "nOnE", "NoNe")},
    **{f"alg-{casing}-signed": _alg_none_with_signature(casing) for casing in ("none", "NONE")},
    "alg-missing": Case(
        lambda ctx: sign_compact({"typ": "JWT"}, _claims()), "algorithm_not_allowed", "alg"
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
        _hs256_with(Context.rsa_pem, "rsa-1"), "algorithm_not_allowed", "alg"
    ),
    "hs256-signed-with-rsa-public-jwk-json": Case(
        _hs256_with(lambda ctx: json.dumps(dict(ctx.rsa.public_jwk)).encode(), None),
        "algorithm_not_allowed",
        "alg",
    ),
    "hs256-pem-when-hmac-only-for-another-issuer": Case(
        _hs256_with(Context.rsa_pem, "rsa-1"), "unknown_key", validator="hmac-elsewhere"
    ),
    "hs256-pem-no-kid-when-hmac-only-for-another-issuer": Case(
        _hs256_with(Context.rsa_pem, None), "unknown_key", validator="hmac-elsewhere"
    ),
    "hs256-pem-with-rsa-kid-beside-a-secret": Case(
        _hs256_with(Context.rsa_pem, "rsa-1"), "unknown_key", validator="hmac-same-issuer"
    ),
    "hs256-pem-no-kid-beside-a-secret": Case(
        _hs256_with(Context.rsa_pem, None), "bad_signature", validator="hmac-same-issuer"
    ),
    # -- oct keys in a JWK Set ------------------------------------------------------------
    "oct-jwk-in-jwks-hs256-not-allowed": Case(
        _hs256_with(lambda ctx: SECRET, "oct-1"), "algorithm_not_allowed", "alg", "oct-in-jwks"
    ),
    "oct-jwk-in-jwks-hs256-allowed-elsewhere": Case(
        _hs256_with(lambda ctx: SECRET, "oct-1"), "unknown_key", validator="hmac-elsewhere"
    ),
    # -- keys named by header parameters that are never trusted ---------------------------
    "embedded-jwk-attacker-kid": Case(
        lambda ctx: ctx.sign({"jwk": dict(ctx.attacker.public_jwk)}, key=ctx.attacker),
        "unknown_key",
    ),
    "embedded-jwk-no-kid": Case(
        lambda ctx: sign_compact(
            {"alg": "RS256", "jwk": dict(ctx.attacker.public_jwk)}, _claims(), key=ctx.attacker
        ),
        "unknown_key",
    ),
    "embedded-jwk-with-trusted-kid": Case(
        lambda ctx: sign_compact(
            {"alg": "RS256", "kid": "rsa-1", "jwk": dict(ctx.attacker.public_jwk)},
            _claims(),
            key=ctx.attacker,
        ),
        "bad_signature",
    ),
    **{
        f"{param}-no-kid": Case(
            lambda ctx, param=param, value=value: sign_compact(
                {"alg": "RS256", param: value}, _claims(), key=ctx.attacker
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
            _claims(),
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
            [_b64(b'{"alg":"RSA-OAEP","enc":"A256GCM"}'), "a" * 20, "b" * 16, "c" * 30, "d" * 22]
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
        _segment_swap(2, lambda s: s + "=" * (-len(s) % 4 or 4)), "malformed"
    ),
    "padding-in-payload": Case(_segment_swap(1, lambda s: s + "=="), "malformed"),
    "standard-alphabet-plus": Case(_segment_swap(2, lambda s: "+" + s[1:]), "malformed"),
    "standard-alphabet-slash": Case(_segment_swap(1, lambda s: "/" + s[1:]), "malformed"),
    "segment-length-1-mod-4": Case(
        _segment_swap(2, lambda s: s[: len(s) - len(s) % 4] + "A"), "malformed"
    ),
    "non-canonical-header-bits": Case(_noncanonical_segment(0), "malformed"),
    "non-canonical-payload-bits": Case(_noncanonical_segment(1), "malformed"),
    "non-canonical-signature-bits": Case(_noncanonical_segment(2), "malformed"),
    # -- JSON -------------------------------------------------------------------------------
    "duplicate-alg-in-header": Case(
        _raw_token(b'{"alg":"none","alg":"RS256","kid":"rsa-1"}', _claims()), "malformed"
    ),
    "duplicate-exp-in-payload": Case(
        lambda ctx: sign_compact(
            {"alg": "RS256", "kid": "rsa-1"},
            json.dumps(_claims()).encode()[:-1] + f', "exp": {NOW + 10**6}}}'.encode(),
            key=ctx.rsa,
        ),
        "malformed",
    ),
    "duplicate-iss-in-payload": Case(
        lambda ctx: sign_compact(
            {"alg": "RS256", "kid": "rsa-1"},
            b'{"iss": "https://evil.example/", ' + json.dumps(_claims()).encode()[1:],
            key=ctx.rsa,
        ),
        "malformed",
    ),
    "header-is-array": Case(_raw_token(b'["RS256"]', _claims()), "malformed"),
    "header-is-string": Case(_raw_token(b'"RS256"', _claims()), "malformed"),
    "payload-is-array": Case(lambda ctx: ctx.sign({}, [_claims()]), "malformed"),
    "payload-is-string": Case(lambda ctx: ctx.sign({}, b'"sub"'), "malformed"),
    "payload-is-number": Case(lambda ctx: ctx.sign({}, b"1800000000"), "malformed"),
    "payload-is-null": Case(lambda ctx: ctx.sign({}, b"null"), "malformed"),
    "payload-not-json": Case(lambda ctx: ctx.sign({}, b"exp=1800000300"), "malformed"),
    "payload-invalid-utf8": Case(lambda ctx: ctx.sign({}, b'{"sub": "\xff"}'), "malformed"),
    "payload-utf8-bom": Case(
        lambda ctx: ctx.sign({}, b"\xef\xbb\xbf" + json.dumps(_claims()).encode()), "malformed"
    ),
    "payload-trailing-garbage": Case(
        lambda ctx: ctx.sign({}, json.dumps(_claims()).encode() + b"x"), "malformed"
    ),
    "payload-lone-surrogate": Case(
        lambda ctx: ctx.sign({}, json.dumps(_claims(sub="\ud800")).encode()), "malformed"
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
        lambda ctx: sign_compact({"alg": "RS256", "kid": "rsa-1"}, _claims(), key=ctx.rsa),
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
    # -- signature tampering ------------------------------------------------------------------
    "payload-changed-after-signing": Case(
        lambda ctx: ".".join(
            [
                ctx.good().split(".")[0],
                _b64(json.dumps(_claims(sub="admin")).encode()),
                ctx.good().split(".")[2],
            ]
        ),
        "bad_signature",
    ),
    "signature-empty": Case(lambda ctx: ctx.good().rsplit(".", 1)[0] + ".", "bad_signature"),
    "signature-truncated": Case(
        _segment_swap(2, lambda s: b64url(b64url_decode(s.encode())[:-1])), "bad_signature"
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


@pytest.fixture(scope="module")
def ctx() -> Iterator[Context]:
    return Context()


@pytest.fixture(scope="module")
def validators(ctx: Context) -> dict[str, Validator]:
    return {}


def _validator(ctx: Context, cache: dict[str, Validator], name: str) -> Validator:
    if name not in cache:
        cache[name] = ctx.validator(name)
    return cache[name]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_attack_token_is_refused_with_its_reason(
    case: Case, ctx: Context, validators: dict[str, Validator]
) -> None:
    token = case.build(ctx)
    validator = _validator(ctx, validators, case.validator)
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    error = caught.value
    assert error.reason == case.reason
    if case.claim is not UNSET:
        assert error.claim == case.claim
    assert error.error in ("invalid_request", "invalid_token")
    assert error.status_code in (400, 401)
    assert isinstance(error.description, str)
    assert error.description
    if isinstance(token, str) and len(token) > 8:
        assert token not in error.description
        assert token not in repr(error)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "name", ["alg-none", "jwks-duplicate-kid", "exp-string", "multi-megabyte-token", "input-none"]
)
async def test_avalidate_refuses_attack_tokens_with_the_same_reason(
    name: str, ctx: Context, validators: dict[str, Validator]
) -> None:
    case = CASES[name]
    validator = _validator(ctx, validators, case.validator)
    with pytest.raises(TokenError) as caught:
        await validator.avalidate(case.build(ctx))
    assert caught.value.reason == case.reason


def test_the_good_token_of_the_table_is_accepted(
    ctx: Context, validators: dict[str, Validator]
) -> None:
    """Guards the table: its rows fail for the reason they name, not for a broken base token."""
    for name in ("default", "typed", "hmac-same-issuer", "dirty-jwks"):
        validator = _validator(ctx, validators, name)
        token = ctx.sign({}, key=ctx.ec) if name == "dirty-jwks" else ctx.good()
        assert validator.validate(token).subject == "user-123"


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_at_jwt_is_accepted_in_every_spelling_rfc_9068_allows(
    typ: str, ctx: Context, validators: dict[str, Validator]
) -> None:
    validator = _validator(ctx, validators, "typed")
    assert validator.validate(ctx.sign({"typ": typ})).header["typ"] == typ


def test_hmac_secret_validates_its_own_tokens_beside_a_jwks(
    ctx: Context, validators: dict[str, Validator]
) -> None:
    validator = _validator(ctx, validators, "hmac-same-issuer")
    token = _hs256_with(lambda ctx: SECRET, None)(ctx)
    claims = validator.validate(token)
    assert claims.key_id is None
    assert claims.header["alg"] == "HS256"


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
def test_a_token_may_be_text_or_bytes(
    form: Any, ctx: Context, validators: dict[str, Validator]
) -> None:
    token = ctx.good()
    value = token if form is str else form(token.encode())
    assert _validator(ctx, validators, "default").validate(value).subject == "user-123"


def test_a_str_subclass_is_a_token(ctx: Context, validators: dict[str, Validator]) -> None:
    class Text(str):
        pass

    assert _validator(ctx, validators, "default").validate(Text(ctx.good())).subject == "user-123"


def test_a_header_refused_once_is_refused_every_time(
    ctx: Context, validators: dict[str, Validator]
) -> None:
    validator = _validator(ctx, validators, "default")
    token = ctx.sign({"crit": ["exp"]})
    for _ in range(3):
        with pytest.raises(TokenError) as caught:
            validator.validate(token)
        assert caught.value.reason == "unsupported_critical"


def test_the_header_cache_is_per_validator_policy(ctx: Context) -> None:
    token = ctx.good()
    lenient = _validator(ctx, {}, "default")
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
    validator = _validator(ctx, {}, "default")
    for number in range(150):
        assert validator.validate(ctx.sign({"n": number}))
    assert len(validator._headers) <= 64
