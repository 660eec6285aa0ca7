"""Cache hits skip the signature and answer like a full validation."""

from __future__ import annotations

import gc
import hashlib
import types
from collections.abc import Iterator

import pytest

from jwkguard import Issuer, TokenError, Validator
from jwkguard._parse import _c_loads
from jwkguard._token_cache import _deep_size
from jwkguard.testing import SigningKey

from ...conftest import AUDIENCE, ISSUER, FakeClock
from .kit import (
    FakeLifecycle,
    SwappableValidator,
    assert_same_claims,
    cache_of,
    make_validator,
    mint,
)

# -- hits -------------------------------------------------------------------------------------


def test_a_repeated_token_is_verified_once_and_gets_equal_claims(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, scopes="a b", roles=["admin"], realm_access={"roles": ["x"]})
    first = validator.validate(token)
    second = validator.validate(token)
    assert validator.source.verifications == 1
    assert_same_claims(second, first)
    assert second.scopes == frozenset({"a", "b"})
    assert second.thumbprint == rsa_key.thumbprint
    assert second.roles == frozenset({"admin"})


def test_every_hit_of_a_token_comes_from_the_same_entry(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    full = validator.validate(token)
    hits = [validator.validate(token) for _ in range(3)]
    assert full._origin is None
    entry = cache_of(validator).get(token)
    assert entry is not None
    assert all(hit._origin is entry for hit in hits)


def test_payloads_orjson_would_read_differently_are_rebuilt_by_the_strict_decoder(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    # An integer beyond 64 bits: orjson would read a float, the strict decoder an int.
    token = mint(rsa_key, clock, big=2**70 + 1, nested={"a": [1, {"b": 2.5}]})
    first = validator.validate(token)
    entry = cache_of(validator).get(token)
    assert entry is not None
    assert entry.decode is not _c_loads
    second = validator.validate(token)
    assert second["big"] == 2**70 + 1
    assert type(second["big"]) is int
    assert_same_claims(second, first)
    assert validator.source.verifications == 1


def test_a_typical_entry_is_estimated_under_one_kib(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    # About 450 characters, nine claims: the issue's "typical 500-byte token".
    token = mint(rsa_key, clock, scope="orders:read orders:write profile", client_id="web-app")
    validator.validate(token)
    cache = cache_of(validator)
    entry = cache.get(token)
    assert entry is not None
    assert entry.decode is _c_loads
    # The header, the scope set and the member names are shared among tokens (counted once,
    # with the first entry that holds them): the rest is what each further token costs.
    shared = _deep_size(dict(entry.header)) + _deep_size(entry.scopes) + _deep_size(entry.names)
    assert entry.size - shared <= 1024
    assert entry.size == cache.size_bytes
    second = mint(rsa_key, clock, scope="orders:read orders:write profile", client_id="web-app")
    validator.validate(second)
    assert cache.size_bytes - entry.size <= 1024


def test_a_hit_answers_membership_without_decoding_its_payload(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    validator = make_validator(rsa_key, clock)  # no lifecycle checks: nothing reads the claims
    token = mint(rsa_key, clock, cnf={"jkt": "x"})
    full = validator.validate(token)
    hit = validator.validate(token)
    assert ("cnf" in hit, "act" in hit, 1 in hit) == (True, False, False)
    assert hit._decoded is None  # type: ignore[attr-defined]
    assert hit.scopes == full.scopes
    assert hit["cnf"] == {"jkt": "x"}
    assert hit._decoded is not None  # type: ignore[attr-defined]
    assert ("cnf" in hit, "act" in hit) == (True, False)
    assert ("cnf" in full, "act" in full, 1 in full) == (True, False, False)


@pytest.mark.anyio
async def test_avalidate_shares_the_cache_with_validate(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    first = validator.validate(token)
    assert_same_claims(await validator.avalidate(token), first)
    assert validator.source.verifications == 1


def test_str_and_bytes_forms_of_a_token_share_one_entry(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    validator.validate(token.encode("ascii"))
    validator.validate(token)
    assert len(cache_of(validator)) == 1
    assert validator.source.verifications == 1


def test_every_hit_asks_the_key_source_and_runs_the_lifecycle_checks(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock, lifecycle: FakeLifecycle
) -> None:
    token = mint(rsa_key, clock)
    for _ in range(3):
        validator.validate(token)
    assert validator.source.lookups == 3
    assert lifecycle.checks == 3


def test_the_cache_keeps_a_digest_of_the_token_never_the_token(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    validator.validate(token)
    cache = cache_of(validator)
    assert list(cache._entries) == [hashlib.sha256(token.encode()).digest()]
    signature = token.rsplit(".", 1)[1]
    texts = list(reachable_text(cache))
    assert any(isinstance(text, str) and text == ISSUER for text in texts)  # the walk works
    assert not any(signature in text for text in texts if isinstance(text, str))
    assert not any(signature.encode() in text for text in texts if isinstance(text, bytes))


def reachable_text(root: object, limit: int = 200_000) -> Iterator[str | bytes]:
    """Every str and bytes object reachable from ``root`` (bounded walk)."""
    seen: set[int] = set()
    pending = [root]
    while pending and len(seen) < limit:
        item = pending.pop()
        if id(item) in seen or isinstance(item, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(item))
        if isinstance(item, str | bytes):
            yield item
            continue
        pending.extend(gc.get_referents(item))


def test_static_keys_serve_hits_until_the_token_expires(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    validator = Validator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [rsa_key.public_jwk]})],
        algorithms=["RS256"],
        clock=clock,
        token_cache=True,
    )
    token = mint(rsa_key, clock, lifetime=10)
    first = validator.validate(token)
    clock.advance(9)
    assert_same_claims(validator.validate(token), first)
    assert len(cache_of(validator)) == 1
    clock.advance(1)
    with pytest.raises(TokenError, match="expired"):
        validator.validate(token)
    assert len(cache_of(validator)) == 0


def test_the_cache_is_off_unless_asked_for(rsa_key: SigningKey, clock: FakeClock) -> None:
    validator = make_validator(rsa_key, clock, cache=False)
    token = mint(rsa_key, clock)
    validator.validate(token)
    validator.validate(token)
    assert validator.token_cache is None
    assert validator.source.verifications == 2
