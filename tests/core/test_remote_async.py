"""The async driver: the same decisions as the sync one, refreshes in background tasks."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Callable

import pytest

from jwkguard import KeysUnavailable, TokenError, Validator
from jwkguard.errors import KeyNotFound
from jwkguard.keys._remote import RemoteKeySource
from jwkguard.testing import LocalIssuer

from ..conftest import FakeClock
from ._remote_support import JWKS, Events, forged, remote_validator, token

pytestmark = pytest.mark.anyio


def source_of(validator: Validator, issuer: LocalIssuer) -> RemoteKeySource:
    source = validator.key_source(issuer.url)
    assert isinstance(source, RemoteKeySource)
    return source


async def wait_for(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` on the event loop; fail after five seconds."""
    deadline = time.monotonic() + 5.0
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_hundred_tasks_on_a_cold_cache_share_exactly_one_fetch(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    local_issuer.slow_body(0.3)
    async with remote_validator(local_issuer, clock, timeout=2) as validator:
        good = token(local_issuer, clock)
        results = await asyncio.gather(*(validator.avalidate(good) for _ in range(100)))
    assert [claims.subject for claims in results] == ["user-123"] * 100
    assert local_issuer.requests[JWKS] == 1


async def test_hundred_tasks_missing_a_rotated_key_share_exactly_one_fetch(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    async with remote_validator(local_issuer, clock) as validator:
        await validator.avalidate(token(local_issuer, clock))
        new_key = local_issuer.rotate()
        rotated = token(local_issuer, clock)
        results = await asyncio.gather(*(validator.avalidate(rotated) for _ in range(100)))
    assert {claims.key_id for claims in results} == {new_key.kid}
    assert local_issuer.requests[JWKS] == 2


async def test_refresh_ahead_runs_in_the_background_and_never_blocks_requests(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    events = Events()
    async with remote_validator(local_issuer, clock, events, timeout=2.0) as validator:
        good = token(local_issuer, clock)
        await validator.awarm_up()
        local_issuer.hang(10, paths={JWKS})
        clock.advance(241)  # refresh due, keys still fresh
        started = time.perf_counter()
        assert (await validator.avalidate(good)).subject == "user-123"  # starts the refresh
        slowest = time.perf_counter() - started
        await wait_for(lambda: local_issuer.requests[JWKS] == 2)  # it hangs at the issuer now
        for _ in range(10):
            started = time.perf_counter()
            assert (await validator.avalidate(good)).subject == "user-123"
            slowest = max(slowest, time.perf_counter() - started)
            await asyncio.sleep(0)
        assert "refresh_failed" not in events.kinds()  # still hanging
        await wait_for(lambda: "refresh_failed" in events.kinds())
        local_issuer.heal()
    assert slowest < 0.5  # the background refresh hangs for two seconds
    assert local_issuer.requests[JWKS] == 2  # one background refresh, shared


async def test_aclose_cancels_a_hanging_background_refresh_promptly(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    validator = remote_validator(local_issuer, clock, timeout=5.0)
    good = token(local_issuer, clock)
    await validator.avalidate(good)
    local_issuer.hang(10, paths={JWKS})
    clock.advance(241)
    await validator.avalidate(good)
    await wait_for(lambda: local_issuer.requests[JWKS] == 2)
    started = time.perf_counter()
    await validator.aclose()
    assert time.perf_counter() - started < 0.5
    local_issuer.heal()


async def test_flood_of_unknown_kids_costs_at_most_one_fetch_per_cooldown(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    async with remote_validator(local_issuer, clock) as validator:
        await validator.avalidate(token(local_issuer, clock))
        flood = [forged(local_issuer, clock) for _ in range(1000)]
        outcomes = await asyncio.gather(
            *(validator.avalidate(t) for t in flood), return_exceptions=True
        )
        assert all(isinstance(outcome, KeyNotFound) for outcome in outcomes)
        assert local_issuer.requests[JWKS] <= 2
        clock.advance(30)
        for forged_token in flood[:100]:
            with pytest.raises(KeyNotFound):
                await validator.avalidate(forged_token)
        for _ in range(100):
            with pytest.raises(KeyNotFound):
                await validator.avalidate(forged(local_issuer, clock))
        assert local_issuer.requests[JWKS] <= 3


async def test_stale_keys_serve_then_keys_unavailable_then_recovery(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    events = Events()
    async with remote_validator(local_issuer, clock, events, max_stale=600) as validator:
        good = token(local_issuer, clock)
        await validator.avalidate(good)
        local_issuer.fail_with(503)
        clock.advance(301)
        assert (await validator.avalidate(good)).subject == "user-123"
        assert events.kinds()[-2:] == ["refresh_failed", "serving_stale"]
        clock.advance(600)
        with pytest.raises(KeysUnavailable):
            await validator.avalidate(good)
        local_issuer.heal()
        clock.advance(61)
        assert (await validator.avalidate(good)).subject == "user-123"
        assert events.kinds()[-1] == "recovered"


async def test_arefresh_awarm_up_and_request_refresh(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    async with remote_validator(local_issuer, clock) as validator:
        await validator.awarm_up()
        await validator.awarm_up()
        assert local_issuer.requests[JWKS] == 1
        source = source_of(validator, local_issuer)
        assert await source.arefresh() is True
        assert local_issuer.requests[JWKS] == 2
        source.request_refresh()
        await validator.avalidate(token(local_issuer, clock))
        await wait_for(lambda: local_issuer.requests[JWKS] == 3)
        await wait_for(lambda: source.status().fetches == 3)
        await validator.avalidate(token(local_issuer, clock))
        assert local_issuer.requests[JWKS] == 3


async def test_awarm_up_raises_keys_unavailable_with_the_cause(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    local_issuer.fail_with(503)
    async with remote_validator(local_issuer, clock) as validator:
        with pytest.raises(KeysUnavailable) as caught:
            await validator.awarm_up()
    assert "HTTP 503" in str(caught.value.__cause__)


async def test_sync_and_async_callers_share_one_cache(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    async with remote_validator(local_issuer, clock) as validator:
        good = token(local_issuer, clock)
        await asyncio.to_thread(validator.validate, good)
        assert (await validator.avalidate(good)).subject == "user-123"
    assert local_issuer.requests[JWKS] == 1


def test_a_validator_works_across_event_loops(local_issuer: LocalIssuer, clock: FakeClock) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validator = remote_validator(local_issuer, clock)
        good = token(local_issuer, clock)

        async def use(refetch: bool) -> str:
            if refetch:
                await source_of(validator, local_issuer).arefresh()
            return (await validator.avalidate(good)).subject

        assert asyncio.run(use(False)) == "user-123"
        assert asyncio.run(use(True)) == "user-123"
        asyncio.run(validator.aclose())
    assert local_issuer.requests[JWKS] == 2


async def test_cancelled_waiter_does_not_cancel_the_shared_fetch(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    local_issuer.slow_body(0.4)
    async with remote_validator(local_issuer, clock, timeout=2) as validator:
        good = token(local_issuer, clock)
        first = asyncio.ensure_future(validator.avalidate(good))
        second = asyncio.ensure_future(validator.avalidate(good))
        await wait_for(lambda: local_issuer.requests[JWKS] == 1)
        first.cancel()
        claims = await second
        with pytest.raises(asyncio.CancelledError):
            await first
    assert claims.subject == "user-123"
    assert local_issuer.requests[JWKS] == 1


async def test_token_errors_are_token_errors_in_async_too(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    async with remote_validator(local_issuer, clock) as validator:
        with pytest.raises(TokenError) as caught:
            await validator.avalidate(forged(local_issuer, clock))
    assert caught.value.reason == "unknown_key"
