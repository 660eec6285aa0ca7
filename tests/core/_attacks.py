"""The machinery of the attack tables (tests/core/test_attacks_*.py): keys, validators, rows.

Each row (a ``Case``) builds one token (with real keys and real signatures where a signature
matters), validates it with one of a few validators, and checks the refusal: a ``TokenError``
with the expected ``reason`` (and ``claim`` where one is at fault), an RFC 6750 ``error`` code,
a status, and a description that never echoes the token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from jwkguard import Issuer, TokenError, Validator
from jwkguard.testing import SigningKey, b64url, generate_key, sign_compact

from ..conftest import AUDIENCE, ISSUER

NOW = 1_800_000_000
OTHER_ISSUER = "https://other.example.com/"
SECRET = b"s" * 32
UNSET = object()


def base_claims(**overrides: Any) -> dict[str, Any]:
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

    def __init__(self) -> None:
        self._validators: dict[str, Validator] = {}

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
            base_claims() if payload is None else payload,
            key=key,
        )

    def good(self, **claims: Any) -> str:
        return self.sign({}, base_claims(**claims))

    def jwks(self, *extra: dict[str, Any]) -> dict[str, Any]:
        return {"keys": [dict(self.rsa.public_jwk), dict(self.ec.public_jwk), *extra]}

    def validator(self, name: str) -> Validator:
        """The validator ``name``, built once and shared by the tests of a module."""
        if name not in self._validators:
            self._validators[name] = self.new_validator(name)
        return self._validators[name]

    def new_validator(self, name: str) -> Validator:
        """A fresh validator ``name`` (its header cache empty)."""
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
    """One row: how to build the token, the refusal expected, and the validator to ask."""

    build: Callable[[Context], Any]
    reason: str
    claim: object = UNSET
    validator: str = "default"


def segment_swap(index: int, replace: Callable[[str], str]) -> Callable[[Context], str]:
    def build(ctx: Context) -> str:
        parts = ctx.good().split(".")
        parts[index] = replace(parts[index])
        return ".".join(parts)

    return build


def hs256_with(secret_of: Callable[[Context], bytes], kid: str | None) -> Callable[[Context], str]:
    def build(ctx: Context) -> str:
        header: dict[str, Any] = {"alg": "HS256", "typ": "at+jwt"}
        if kid is not None:
            header["kid"] = kid
        return sign_compact(header, base_claims(), secret=secret_of(ctx), alg="HS256")

    return build


def assert_refused(case: Case, ctx: Context) -> None:
    """The row's token is refused for its reason, with a safe error that never echoes it."""
    token = case.build(ctx)
    validator = ctx.validator(case.validator)
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


async def assert_refused_async(case: Case, ctx: Context) -> None:
    """``avalidate`` refuses the row's token for the same reason."""
    validator = ctx.validator(case.validator)
    with pytest.raises(TokenError) as caught:
        await validator.avalidate(case.build(ctx))
    assert caught.value.reason == case.reason
