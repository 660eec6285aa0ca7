"""A hit still asks the keys and the lifecycle layer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jwkguard import Event, TokenError, Validator
from jwkguard.lifecycle import Lifecycle, LifecycleAdmin, MemoryStore
from jwkguard.testing import LocalIssuer, SigningKey, generate_key

from ...conftest import ISSUER, FakeClock
from .kit import (
    FakeLifecycle,
    SwappableValidator,
    assert_same_claims,
    cache_of,
    key_set_of,
    make_validator,
    mint,
)

# -- keys and lifecycle -----------------------------------------------------------------------


def test_a_key_removed_from_the_jwks_stops_cached_tokens_at_once(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    validator.validate(token)
    validator.source.key_set = key_set_of(generate_key("RS256", kid="rsa-2"))
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "unknown_key"
    assert len(cache_of(validator)) == 0


def test_a_key_replaced_under_the_same_kid_stops_cached_tokens(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    validator.validate(token)
    validator.source.key_set = key_set_of(generate_key("RS256", kid=rsa_key.kid))
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "bad_signature"
    assert len(cache_of(validator)) == 0


def test_a_token_revoked_after_caching_is_refused_and_dropped(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock, lifecycle: FakeLifecycle
) -> None:
    token = mint(rsa_key, clock)
    claims = validator.validate(token)
    assert claims.token_id is not None
    lifecycle.revoked.add(claims.token_id)
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "revoked"
    assert len(cache_of(validator)) == 0
    with pytest.raises(TokenError, match="revoked"):
        validator.validate(token)
    assert len(cache_of(validator)) == 0


@pytest.mark.anyio
async def test_a_distrusted_key_stops_cached_tokens_in_async_code(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock, lifecycle: FakeLifecycle
) -> None:
    token = mint(rsa_key, clock)
    await validator.avalidate(token)
    lifecycle.distrusted.add(rsa_key.thumbprint)
    with pytest.raises(TokenError) as caught:
        await validator.avalidate(token)
    assert caught.value.reason == "key_distrusted"
    assert len(cache_of(validator)) == 0
    lifecycle.distrusted.clear()
    await validator.avalidate(token)
    assert validator.source.verifications == 2


# -- with the real lifecycle layer and a real remote issuer -----------------------------------


@pytest.fixture
def fleet(
    rsa_key: SigningKey, clock: FakeClock
) -> tuple[SwappableValidator, LifecycleAdmin, list[Event]]:
    store = MemoryStore(clock=clock)
    events: list[Event] = []
    validator = make_validator(rsa_key, clock, lifecycle=Lifecycle(store))
    return validator, LifecycleAdmin(store, clock=clock, on_event=events.append), events


def test_lifecycle_revocation_reaches_a_cached_token(
    fleet: tuple[SwappableValidator, LifecycleAdmin, list[Event]],
    rsa_key: SigningKey,
    clock: FakeClock,
) -> None:
    validator, admin, _ = fleet
    token = mint(rsa_key, clock)
    claims = validator.validate(token)
    assert claims.token_id is not None
    admin.revoke_token(
        claims.token_id, issuer=ISSUER, expires_at=claims["exp"], by="ops", why="leaked"
    )
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "revoked"
    assert len(cache_of(validator)) == 0


def test_lifecycle_distrust_and_trust_of_the_signing_key(
    fleet: tuple[SwappableValidator, LifecycleAdmin, list[Event]],
    rsa_key: SigningKey,
    clock: FakeClock,
) -> None:
    validator, admin, _ = fleet
    token = mint(rsa_key, clock)
    validator.validate(token)
    admin.distrust_key(issuer=ISSUER, thumbprint=rsa_key.thumbprint, by="ops", why="compromised")
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "key_distrusted"
    assert len(cache_of(validator)) == 0
    admin.trust_key(issuer=ISSUER, thumbprint=rsa_key.thumbprint, by="ops", why="false alarm")
    validator.validate(token)
    assert validator.source.verifications == 2


def test_lifecycle_subject_cut_off_reaches_a_cached_token(
    fleet: tuple[SwappableValidator, LifecycleAdmin, list[Event]],
    rsa_key: SigningKey,
    clock: FakeClock,
) -> None:
    validator, admin, _ = fleet
    token = mint(rsa_key, clock, subject="leaver")
    validator.validate(token)
    clock.advance(1)
    admin.cut_off_subject("leaver", issuer=ISSUER, by="hr", why="offboarded")
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "subject_cut_off"


def test_a_one_time_token_is_refused_on_its_second_use_even_from_the_cache(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    lifecycle = Lifecycle(MemoryStore(clock=clock), one_time=lambda claims: True)
    validator = make_validator(rsa_key, clock, lifecycle=lifecycle)
    token = mint(rsa_key, clock)
    validator.validate(token)
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "replayed"
    assert len(cache_of(validator)) == 0


@pytest.fixture
def remote(local_issuer: LocalIssuer, clock: FakeClock) -> Iterator[Validator]:
    with Validator(
        issuers=[local_issuer.issuer_config(jwks_uri=local_issuer.jwks_uri, cooldown=0)],
        algorithms=["RS256"],
        clock=clock,
        token_cache=True,
    ) as validator:
        yield validator


def test_a_key_retired_by_a_remote_issuer_stops_cached_tokens(
    remote: Validator, local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    validator = remote
    token = local_issuer.mint(now=clock.now)
    first = validator.validate(token)
    assert validator.validate(token)._origin is cache_of(validator).get(token)
    assert_same_claims(validator.validate(token), first)
    local_issuer.rotate(retire_old=True)
    validator.validate(local_issuer.mint(now=clock.now))  # the new kid: one refetch
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "unknown_key"
    assert cache_of(validator).get(token) is None
    assert len(cache_of(validator)) == 1


def test_a_remote_refresh_due_during_hits_still_happens(
    remote: Validator, local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    validator = remote
    token = local_issuer.mint(now=clock.now, lifetime=3600)
    validator.validate(token)
    fetches = local_issuer.requests["/jwks.json"]
    local_issuer.rotate(retire_old=True)
    clock.advance(301)  # past the JWK Set's max-age: the next lookup refreshes
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "unknown_key"
    assert local_issuer.requests["/jwks.json"] > fetches


def test_keys_stale_past_max_stale_stop_cached_tokens(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    issuer = local_issuer.issuer_config(jwks_uri=local_issuer.jwks_uri, max_stale=60)
    with Validator(
        issuers=[issuer], algorithms=["RS256"], clock=clock, token_cache=True
    ) as validator:
        token = local_issuer.mint(now=clock.now, lifetime=3600)
        validator.validate(token)
        with local_issuer.outage():
            clock.advance(300 + 30)  # past max-age, within max_stale: the old keys serve
            validator.validate(token)
            clock.advance(60)
            with pytest.raises(TokenError) as caught:
                validator.validate(token)
        assert (caught.value.status_code, caught.value.reason) == (503, "keys_unavailable")
        assert len(cache_of(validator)) == 0


@pytest.mark.anyio
async def test_a_key_retired_by_a_remote_issuer_stops_cached_tokens_in_async_code(
    remote: Validator, local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    validator = remote
    token = local_issuer.mint(now=clock.now)
    first = await validator.avalidate(token)
    assert_same_claims(await validator.avalidate(token), first)
    local_issuer.rotate(retire_old=True)
    assert await validator.key_source(local_issuer.url).arefresh()  # type: ignore[attr-defined]
    with pytest.raises(TokenError) as caught:
        await validator.avalidate(token)
    assert caught.value.reason == "unknown_key"
    assert len(cache_of(validator)) == 0
    await validator.aclose()
