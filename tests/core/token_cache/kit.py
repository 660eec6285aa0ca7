"""What the token-cache tests share: swappable keys, a fake lifecycle, minting."""

from __future__ import annotations

import asyncio
from typing import Any

from jwkguard import Claims, Issuer, TokenCache, Validator
from jwkguard._algorithms import Verifier
from jwkguard.errors import LifecycleError
from jwkguard.keys import KeyMatch, KeySet, StaticKeySource
from jwkguard.lifecycle import LifecycleCheck
from jwkguard.testing import SigningKey, mint_token

from ...conftest import AUDIENCE, ISSUER, FakeClock


class SwappableKeySource(StaticKeySource):
    """A static key source whose key set a test replaces, counting lookups and signature
    checks."""

    def __init__(self, key_set: KeySet) -> None:
        super().__init__(key_set)
        self.verifications = 0
        self.lookups = 0

    @property
    def key_set(self) -> KeySet:
        return self.current_keys()

    @key_set.setter
    def key_set(self, key_set: KeySet) -> None:
        self._key_set = key_set

    def key_for(self, kid: str | None, alg: str, now: float) -> KeyMatch:
        self.lookups += 1
        key, verify = super().key_for(kid, alg, now)
        return key, self._counting(verify)

    async def akey_for(self, kid: str | None, alg: str, now: float) -> KeyMatch:
        await asyncio.sleep(0)
        return self.key_for(kid, alg, now)

    def _counting(self, verify: Verifier) -> Verifier:
        def counted(signing_input: bytes, signature: bytes) -> bool:
            self.verifications += 1
            return verify(signing_input, signature)

        return counted


class SwappableValidator(Validator):
    """A validator whose issuers' keys come from a ``SwappableKeySource``."""

    def _key_source_for(self, issuer: Issuer) -> Any:
        keys = super()._key_source_for(issuer).current_keys()
        assert keys is not None
        return SwappableKeySource(keys)

    @property
    def source(self) -> SwappableKeySource:
        source = self.key_source(ISSUER)
        assert isinstance(source, SwappableKeySource)
        return source


class FakeLifecycle:
    """The lifecycle layer in miniature: revoked jtis and distrusted key thumbprints."""

    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.distrusted: set[str] = set()
        self.checks = 0

    def check(self, claims: Claims, now: float) -> None:
        self.checks += 1
        if claims.token_id in self.revoked:
            raise LifecycleError("The access token has been revoked", reason="revoked")
        if claims.thumbprint in self.distrusted:
            raise LifecycleError("The signing key is not trusted", reason="key_distrusted")

    async def acheck(self, claims: Claims, now: float) -> None:
        await asyncio.sleep(0)
        self.check(claims, now)


def key_set_of(*keys: SigningKey) -> KeySet:
    return KeySet.from_jwks({"keys": [dict(key.public_jwk) for key in keys]}, ["RS256"])


def make_validator(
    rsa_key: SigningKey,
    clock: FakeClock,
    *,
    lifecycle: LifecycleCheck | None = None,
    cache: TokenCache | bool = True,
    **options: Any,
) -> SwappableValidator:
    return SwappableValidator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [rsa_key.public_jwk]})],
        algorithms=["RS256"],
        clock=clock,
        lifecycle=lifecycle,
        token_cache=cache,
        **options,
    )


def mint(key: SigningKey, clock: FakeClock, **claims: Any) -> str:
    return mint_token(key, issuer=ISSUER, audience=AUDIENCE, now=clock.now, **claims)


def cache_of(validator: Validator) -> TokenCache:
    assert validator.token_cache is not None
    return validator.token_cache


def assert_same_claims(hit: Claims, full: Claims) -> None:
    """A hit's claims equal the full validation's in every accessor, and share no mutable
    value with them (each hit decodes the cached payload again)."""
    assert hit is not full
    assert dict(hit) == dict(full)
    assert {name: type(value) for name, value in hit.items()} == {
        name: type(value) for name, value in full.items()
    }
    assert dict(hit.header) == dict(full.header)
    assert (hit.key_id, hit.thumbprint, hit.scopes, hit.roles) == (
        full.key_id,
        full.thumbprint,
        full.scopes,
        full.roles,
    )
    assert (hit.subject, hit.issuer, hit.audiences, hit.expires_at, hit.client_id) == (
        full.subject,
        full.issuer,
        full.audiences,
        full.expires_at,
        full.client_id,
    )
    for name, value in hit.items():
        if isinstance(value, list | dict):
            assert value is not full[name]
