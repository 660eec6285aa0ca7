"""One-time tokens and routes (the replay ledger) and the reuse watch, on both stores."""

from __future__ import annotations

import threading
import time

import pytest

from jwkguard import Event, TokenError, Validator
from jwkguard.errors import ConfigurationError, InvalidClaim, LifecycleError
from jwkguard.lifecycle import Lifecycle, LifecycleStore, MemoryStore, ReuseWatch
from jwkguard.testing import SigningKey, mint_token

from ..conftest import AUDIENCE, ISSUER, FakeClock
from ..helpers import arefusal, mint, refusal
from ..servers import RedisServer
from .conftest import close_async, make_redis_store, make_validator

# -- one-time tokens (flag in the token) ------------------------------------------------


def test_one_time_token_is_accepted_once_then_refused_as_replayed(
    validator: Validator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, once=True)
    assert validator.validate(token)["once"] is True
    error = refusal(validator, token)
    assert isinstance(error, LifecycleError)
    assert (error.reason, error.error, error.status_code) == ("replayed", "invalid_token", 401)


def test_tokens_not_flagged_one_time_may_be_reused(
    validator: Validator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    for _ in range(3):
        validator.validate(token)


@pytest.mark.anyio
async def test_one_time_token_through_avalidate(
    validator: Validator, store: LifecycleStore, rsa_key: SigningKey, clock: FakeClock
) -> None:
    try:
        token = mint(rsa_key, clock, once=True)
        await validator.avalidate(token)
        assert (await arefusal(validator, token)).reason == "replayed"
    finally:
        await close_async(store)


def test_a_refused_token_does_not_use_up_its_one_time_use(
    validator: Validator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, once=True, scope="read")
    with pytest.raises(TokenError):
        validator.validate(token, scopes=["write"])
    assert validator.validate(token, scopes=["read"])["once"] is True


def test_one_time_use_needs_a_jti(
    validator: Validator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    error = refusal(validator, mint(rsa_key, clock, once=True, omit=("jti",)))
    assert isinstance(error, InvalidClaim)
    assert (error.reason, error.claim, error.status_code) == ("missing_claim", "jti", 401)


# -- one-time routes (consume after validate) -------------------------------------------


def test_consume_marks_the_token_used_for_a_one_time_route(
    validator: Validator, lifecycle: Lifecycle, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    claims = validator.validate(token)
    lifecycle.consume(claims)
    with pytest.raises(LifecycleError) as caught:
        lifecycle.consume(validator.validate(token))
    assert caught.value.reason == "replayed"
    validator.validate(token)  # other routes still accept it


@pytest.mark.anyio
async def test_aconsume_marks_the_token_used(
    validator: Validator,
    lifecycle: Lifecycle,
    store: LifecycleStore,
    rsa_key: SigningKey,
    clock: FakeClock,
) -> None:
    try:
        claims = await validator.avalidate(mint(rsa_key, clock))
        await lifecycle.aconsume(claims)
        with pytest.raises(LifecycleError) as caught:
            await lifecycle.aconsume(claims)
        assert caught.value.reason == "replayed"
    finally:
        await close_async(store)


def test_the_ledger_keeps_a_token_for_its_remaining_lifetime_plus_grace(
    validator: Validator, lifecycle: Lifecycle, rsa_key: SigningKey, clock: FakeClock
) -> None:
    # The ledger lives exactly as long as the token could still be accepted.
    claims = validator.validate(mint(rsa_key, clock, lifetime=60))
    lifecycle.consume(claims)
    ticket = lifecycle._ticket(claims, clock.now)
    assert ticket.ttl == pytest.approx(60 + lifecycle.replay_grace)


def test_memory_ledger_entry_expires_with_its_ttl(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    assert store.claim_once(ISSUER, "a", ttl=10) is True
    assert store.claim_once(ISSUER, "a", ttl=10) is False
    clock.advance(11)
    assert store.claim_once(ISSUER, "a", ttl=10) is True


def test_redis_ledger_entry_expires_with_its_ttl(
    redis_server: RedisServer, clock: FakeClock, events: list[Event]
) -> None:
    store = make_redis_store(redis_server.url, clock, events)
    assert store.claim_once(ISSUER, "short", ttl=0.2) is True
    assert store.claim_once(ISSUER, "short", ttl=0.2) is False
    time.sleep(0.3)
    assert store.claim_once(ISSUER, "short", ttl=0.2) is True
    store.close()


def test_concurrent_first_uses_in_threads_have_exactly_one_winner(
    validator: Validator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, once=True)
    barrier = threading.Barrier(8, timeout=10)
    outcomes: list[str] = []
    lock = threading.Lock()

    def use() -> None:
        barrier.wait()
        try:
            validator.validate(token)
            outcome = "ok"
        except TokenError as exc:
            outcome = exc.reason
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(outcomes) == ["ok"] + ["replayed"] * 7


# -- reuse watch ------------------------------------------------------------------------


def watched(
    store: LifecycleStore, clock: FakeClock, events: list[Event], watch: ReuseWatch
) -> Lifecycle:
    return Lifecycle(store, reuse=watch, clock=clock, on_event=events.append)


def test_reuse_watch_reports_a_token_seen_from_too_many_addresses_once(
    store: LifecycleStore,
    validator: Validator,
    rsa_key: SigningKey,
    clock: FakeClock,
    events: list[Event],
) -> None:
    lifecycle = watched(store, clock, events, ReuseWatch(max_addresses=2, window=60))
    claims = validator.validate(mint(rsa_key, clock, jti="spread", subject="erin"))
    for address in ["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.2"]:
        lifecycle.observe(claims, address)
    assert [e for e in events if e.kind == "token_reuse"] == []
    usage = lifecycle.observe(claims, "203.0.113.9")
    assert usage is not None
    assert (usage.uses, usage.addresses, usage.new_address) == (5, 3, True)
    lifecycle.observe(claims, "203.0.113.10")
    reuse = [e for e in events if e.kind == "token_reuse"]
    assert len(reuse) == 1
    assert reuse[0].issuer == ISSUER
    assert reuse[0].detail["token_id"] == "spread"
    assert reuse[0].detail["subject"] == "erin"
    assert reuse[0].detail["address"] == "203.0.113.9"
    assert reuse[0].detail["addresses"] == 3


@pytest.mark.anyio
async def test_reuse_watch_reports_a_token_used_too_often(
    store: LifecycleStore,
    validator: Validator,
    rsa_key: SigningKey,
    clock: FakeClock,
    events: list[Event],
) -> None:
    try:
        lifecycle = watched(store, clock, events, ReuseWatch(max_addresses=None, max_uses=3))
        claims = await validator.avalidate(mint(rsa_key, clock, jti="busy"))
        for _ in range(3):
            await lifecycle.aobserve(claims, "10.0.0.1")
        assert [e for e in events if e.kind == "token_reuse"] == []
        usage = await lifecycle.aobserve(claims, "10.0.0.1")
        assert usage is not None
        assert usage.uses == 4
        reuse = [e for e in events if e.kind == "token_reuse"]
        assert [e.detail["uses"] for e in reuse] == [4]
    finally:
        await close_async(store)


def test_reuse_watch_counts_afresh_in_a_new_window(events: list[Event], clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    assert store.record_use(ISSUER, "t", "a", window=10).uses == 1
    assert store.record_use(ISSUER, "t", "b", window=10).addresses == 2
    clock.advance(11)
    usage = store.record_use(ISSUER, "t", "c", window=10)
    assert (usage.uses, usage.addresses) == (1, 1)


def test_redis_reuse_window_expires(
    redis_server: RedisServer, clock: FakeClock, events: list[Event]
) -> None:
    store = make_redis_store(redis_server.url, clock, events)
    first = store.record_use(ISSUER, "w", "a", window=0.2)
    assert first is not None
    assert first.uses == 1
    time.sleep(0.3)
    again = store.record_use(ISSUER, "w", "b", window=0.2)
    assert again is not None
    assert (again.uses, again.addresses) == (1, 1)
    store.close()


def test_reuse_watch_ignores_tokens_without_jti_and_never_refuses(
    store: LifecycleStore, rsa_key: SigningKey, clock: FakeClock, events: list[Event]
) -> None:
    lifecycle = watched(store, clock, events, ReuseWatch(max_addresses=1))
    validator = make_validator(lifecycle, clock, rsa_key)
    claims = validator.validate(mint(rsa_key, clock, omit=("jti",)))
    assert lifecycle.observe(claims, "10.0.0.1") is None
    with_jti = validator.validate(mint(rsa_key, clock))
    for address in ["10.0.0.1", "10.0.0.2", "10.0.0.3"]:
        lifecycle.observe(with_jti, address)
    assert validator.validate(mint(rsa_key, clock)).token_id is not None


def test_observe_without_a_reuse_watch_is_a_configuration_error(
    lifecycle: Lifecycle, validator: Validator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    claims = validator.validate(mint(rsa_key, clock))
    with pytest.raises(ConfigurationError, match="ReuseWatch"):
        lifecycle.observe(claims, "10.0.0.1")


@pytest.mark.parametrize(
    "options",
    [
        {"max_addresses": 0},
        {"max_uses": -1},
        {"max_addresses": None, "max_uses": None},
        {"window": 0},
        {"window": float("inf")},
        {"max_addresses": True},
    ],
)
def test_reuse_watch_rejects_bad_settings(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ReuseWatch(**options)  # type: ignore[arg-type]


def test_lifecycle_rejects_bad_settings() -> None:
    with pytest.raises(ConfigurationError):
        Lifecycle(on_unavailable="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Lifecycle(replay_grace=-1)
    with pytest.raises(ConfigurationError):
        Lifecycle(one_time=True)  # type: ignore[arg-type]


def test_memory_store_is_the_default() -> None:
    assert isinstance(Lifecycle().store, MemoryStore)


def test_tokens_of_other_issuers_share_no_ledger_entry(
    validator: Validator, lifecycle: Lifecycle, rsa_key: SigningKey, clock: FakeClock
) -> None:
    from .conftest import OTHER_ISSUER

    mine = validator.validate(mint(rsa_key, clock, jti="same"))
    theirs = validator.validate(
        mint_token(rsa_key, issuer=OTHER_ISSUER, audience=AUDIENCE, now=clock.now, jti="same")
    )
    lifecycle.consume(mine)
    lifecycle.consume(theirs)
