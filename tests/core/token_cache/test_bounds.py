"""The token cache's bounds (entries, bytes, expiry) and concurrent use."""

from __future__ import annotations

import asyncio
import threading

import pytest

from jwkguard import TokenCache
from jwkguard.testing import SigningKey

from ...conftest import FakeClock
from .kit import SwappableValidator, assert_same_claims, cache_of, make_validator, mint

# -- bounds -----------------------------------------------------------------------------------


def test_capacity_evicts_the_entry_not_used_since_the_last_sweep(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    validator = make_validator(rsa_key, clock, cache=TokenCache(max_entries=3))
    cache = cache_of(validator)
    a, b, c, d, e = (mint(rsa_key, clock, subject=f"user-{n}") for n in range(5))
    for token in (a, b, c):
        validator.validate(token)
    validator.validate(a)  # a is used again: it gets a second chance
    validator.validate(d)
    assert [cache.get(token) is not None for token in (a, b, c, d)] == [True, False, True, True]
    validator.validate(e)
    assert [cache.get(token) is not None for token in (a, c, d, e)] == [True, False, True, True]
    assert len(cache) == 3


def test_expired_entries_are_evicted_before_used_ones(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    validator = make_validator(rsa_key, clock, cache=TokenCache(max_entries=2))
    cache = cache_of(validator)
    short = mint(rsa_key, clock, lifetime=10)
    long = mint(rsa_key, clock, lifetime=600)
    validator.validate(short)
    validator.validate(long)
    validator.validate(short)
    validator.validate(long)
    clock.advance(20)
    validator.validate(fresh := mint(rsa_key, clock))
    assert cache.get(short) is None
    assert cache.get(long) is not None
    assert cache.get(fresh) is not None


def test_the_memory_bound_holds(rsa_key: SigningKey, clock: FakeClock) -> None:
    validator = make_validator(rsa_key, clock, cache=TokenCache(max_bytes=12_000))
    cache = cache_of(validator)
    tokens = [mint(rsa_key, clock, subject=f"user-{n}", note="x" * 500) for n in range(12)]
    for token in tokens:
        validator.validate(token)
        assert cache.size_bytes <= 12_000
    assert 2 <= len(cache) < len(tokens)
    assert cache.size_bytes == sum(entry.size for entry in cache._entries.values())
    assert cache.get(tokens[-1]) is not None


def test_an_entry_larger_than_the_whole_budget_is_not_cached(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    validator = make_validator(rsa_key, clock, cache=TokenCache(max_bytes=500))
    validator.validate(mint(rsa_key, clock))
    assert len(cache_of(validator)) == 0


# -- concurrency ------------------------------------------------------------------------------


def test_concurrent_hits_and_inserts_from_threads(rsa_key: SigningKey, clock: FakeClock) -> None:
    validator = make_validator(rsa_key, clock, cache=TokenCache(max_entries=8))
    cache = cache_of(validator)
    hot = mint(rsa_key, clock, subject="hot")
    cold = [mint(rsa_key, clock, subject=f"cold-{n}") for n in range(24)]
    validator.validate(hot)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def hammer(worker: int) -> None:
        try:
            start.wait(timeout=10)
            for round_ in range(150):
                assert validator.validate(hot).subject == "hot"
                token = cold[(worker * 7 + round_) % len(cold)]
                assert validator.validate(token).subject is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(cache) <= 8
    assert cache.size_bytes == sum(entry.size for entry in cache._entries.values())
    live = [slot for slot in cache._ring if slot is not None]
    assert sorted(id(entry) for entry in live) == sorted(id(e) for e in cache._entries.values())


@pytest.mark.anyio
async def test_concurrent_hits_from_tasks(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    first = await validator.avalidate(token)
    results = await asyncio.gather(*(validator.avalidate(token) for _ in range(200)))
    for claims in results:
        assert_same_claims(claims, first)
    assert validator.source.verifications == 1
