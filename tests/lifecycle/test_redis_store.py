"""The Redis store's replica: loading, pub/sub, heartbeat, resync, outages and recovery."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial

import pytest
import redis

from jwkguard import Event
from jwkguard.errors import StoreUnavailable
from jwkguard.fleet import RedisStore
from jwkguard.lifecycle import Lifecycle, LifecycleAdmin
from jwkguard.pipeline import error_response
from jwkguard.testing import SigningKey

from ..conftest import ISSUER, FakeClock
from ..helpers import mint, outcome
from ..servers import RedisServer, free_port
from .conftest import make_redis_store, make_validator, wait_until


def kinds(events: list[Event]) -> list[str]:
    return [event.kind for event in events]


def timed(call: Callable[[], str]) -> tuple[str, float]:
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


def test_replica_is_loaded_at_start(
    redis_server: RedisServer, clock: FakeClock, events: list[Event]
) -> None:
    first = make_redis_store(redis_server.url, clock, events)
    admin = LifecycleAdmin(first, clock=clock, on_event=events.append)
    admin.revoke_token("t", issuer=ISSUER, expires_at=clock.now + 60, by="a", why="b")
    admin.cut_off_subject("s", issuer=ISSUER, by="a", why="b")
    admin.cut_off_client("c", issuer=ISSUER, by="a", why="b")
    admin.distrust_key(issuer=ISSUER, kid="k", by="a", why="b")
    prefix = first._prefix
    first.close()
    later = RedisStore(redis_server.url, prefix=prefix, clock=clock).start()
    try:
        assert later.available
        assert later.replica.counts() == {
            "revoked": 1,
            "subject_cutoffs": 1,
            "client_cutoffs": 1,
            "distrusted": 1,
        }
        assert later.version == first.version
    finally:
        later.close()


def test_a_change_reaches_another_store_through_pubsub_well_within_a_second(
    redis_server: RedisServer, clock: FakeClock, events: list[Event]
) -> None:
    writer = make_redis_store(redis_server.url, clock, events)
    reader = RedisStore(redis_server.url, prefix=writer._prefix, clock=clock, heartbeat=30).start()
    try:
        LifecycleAdmin(writer, clock=clock).distrust_key(issuer=ISSUER, kid="k", by="a", why="b")
        took = wait_until(lambda: reader.replica.counts()["distrusted"] == 1, timeout=1.0)
        assert took < 1.0
        assert reader.version == writer.version
    finally:
        writer.close()
        reader.close()


def test_a_change_whose_message_was_lost_is_caught_by_the_heartbeat(
    redis_server: RedisServer, clock: FakeClock, events: list[Event]
) -> None:
    store = make_redis_store(redis_server.url, clock, events, heartbeat=0.2, resync_interval=300)
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        # Write and count a change exactly as the Lua script would, but publish nothing.
        raw.hset(store._keys["cutoff:subject"], json.dumps([ISSUER, "mallory"]), clock.now)
        raw.hincrby(store._keys["meta"], "n", 1)
        wait_until(lambda: store.replica.counts()["subject_cutoffs"] == 1, timeout=2.0)
    finally:
        raw.close()
        store.close()


def test_the_periodic_resync_catches_changes_that_bypassed_the_counter(
    redis_server: RedisServer, clock: FakeClock, events: list[Event]
) -> None:
    store = make_redis_store(redis_server.url, clock, events, heartbeat=0.1, resync_interval=0.3)
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        raw.hset(store._keys["distrust"], json.dumps([ISSUER, "kid", "k9"]), clock.now)
        wait_until(lambda: store.replica.counts()["distrusted"] == 1, timeout=2.0)
    finally:
        raw.close()
        store.close()


def test_garbage_on_the_channel_is_ignored_and_later_changes_still_apply(
    redis_server: RedisServer, clock: FakeClock, events: list[Event]
) -> None:
    store = make_redis_store(redis_server.url, clock, events)
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        for junk in ["nonsense", "- - {not json", "abc x {}", '- - {"op":"nope"}', ""]:
            raw.publish(store._prefix + "changes", junk)
        LifecycleAdmin(store, clock=clock).revoke_token(
            "t", issuer=ISSUER, expires_at=clock.now + 60, by="a", why="b"
        )
        time.sleep(0.3)
        assert store.available
        assert store.replica.counts()["revoked"] == 1
        assert "store_unavailable" not in kinds(events)
    finally:
        raw.close()
        store.close()


def test_unreachable_redis_at_start_fails_closed_or_open_without_hanging(
    rsa_key: SigningKey, clock: FakeClock, events: list[Event]
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    store = RedisStore(url, clock=clock, on_event=events.append).start(timeout=5)
    try:
        assert time.monotonic() - started < 2
        assert not store.available
        assert kinds(events) == ["store_unavailable"]
        closed = make_validator(
            Lifecycle(store, on_unavailable="fail_closed", on_event=events.append), clock, rsa_key
        )
        opened = make_validator(
            Lifecycle(
                store,
                on_unavailable="fail_open",
                one_time=lambda c: True,
                on_event=events.append,
            ),
            clock,
            rsa_key,
        )
        token = mint(rsa_key, clock)
        with pytest.raises(StoreUnavailable) as caught:
            closed.validate(token)
        response = error_response(caught.value)
        assert (response.status_code, response.headers["Retry-After"]) == (503, "5")
        assert caught.value.reason == "store_unavailable"
        assert opened.validate(token).token_id  # replay check skipped, token accepted
        assert opened.validate(token).token_id
        with pytest.raises(StoreUnavailable):
            LifecycleAdmin(store).revoke_token(
                "t", issuer=ISSUER, expires_at=clock.now + 1, by="a", why="b"
            )
        assert kinds(events).count("lifecycle_fail_closed") == 1
        assert kinds(events).count("lifecycle_fail_open") == 1
    finally:
        store.close()


def test_a_store_that_was_never_started_is_unavailable(
    redis_server: RedisServer, rsa_key: SigningKey, clock: FakeClock, events: list[Event]
) -> None:
    store = RedisStore(redis_server.url, clock=clock)
    validator = make_validator(
        Lifecycle(store, on_unavailable="fail_closed", on_event=events.append), clock, rsa_key
    )
    with pytest.raises(StoreUnavailable):
        validator.validate(mint(rsa_key, clock))
    assert kinds(events) == ["lifecycle_fail_closed"]
    store.close()


def test_redis_killed_and_restarted_fail_open_and_closed_then_recover_and_restore(
    own_redis: RedisServer, rsa_key: SigningKey, clock: FakeClock, events: list[Event]
) -> None:
    store = make_redis_store(own_redis.url, clock, events, heartbeat=0.2)
    opened = make_validator(
        Lifecycle(store, one_time=lambda c: c.get("once") is True, on_event=events.append),
        clock,
        rsa_key,
    )
    closed = make_validator(
        Lifecycle(store, on_unavailable="fail_closed", on_event=events.append), clock, rsa_key
    )
    admin = LifecycleAdmin(store, clock=clock, on_event=events.append)
    revoked, good, once = (
        mint(rsa_key, clock),
        mint(rsa_key, clock),
        mint(rsa_key, clock, once=True),
    )
    admin.revoke_token(
        opened.validate(revoked).token_id or "",
        issuer=ISSUER,
        expires_at=clock.now + 300,
        by="a",
        why="b",
    )
    try:
        own_redis.kill()
        wait_until(lambda: not store.available, timeout=2.0)
        for validator, token, expected in [
            (opened, good, "ok"),
            (opened, revoked, "revoked"),  # the replica still knows
            (opened, once, "ok"),
            (opened, once, "ok"),  # replay check skipped while Redis is down
            (closed, good, "store_unavailable"),
            (closed, revoked, "store_unavailable"),
        ]:
            result, took = timed(partial(outcome, validator, token))
            assert (result, took < 0.5) == (expected, True)
        assert "store_unavailable" in kinds(events)
        assert {"lifecycle_fail_open", "lifecycle_fail_closed"} <= set(kinds(events))

        own_redis.start()
        wait_until(lambda: store.available, timeout=5.0)
        assert "store_recovered" in kinds(events)
        assert "store_restored" in kinds(events)
        assert outcome(closed, revoked) == "revoked"
        assert outcome(closed, good) == "ok"
        # The restarted Redis got the revocation back: a newcomer learns it from Redis.
        newcomer = RedisStore(own_redis.url, prefix=store._prefix, clock=clock).start()
        try:
            assert newcomer.replica.counts()["revoked"] == 1
        finally:
            newcomer.close()
        # And changes flow again.
        admin.distrust_key(issuer=ISSUER, kid=rsa_key.kid, by="a", why="b")
        assert outcome(closed, good) == "key_distrusted"
    finally:
        store.close()


def test_without_restore_a_restarted_empty_redis_empties_the_replica(
    own_redis: RedisServer, clock: FakeClock, events: list[Event]
) -> None:
    store = make_redis_store(own_redis.url, clock, events, heartbeat=0.2, restore=False)
    try:
        LifecycleAdmin(store, clock=clock).cut_off_subject("s", issuer=ISSUER, by="a", why="b")
        own_redis.kill()
        wait_until(lambda: not store.available, timeout=2.0)
        assert store.replica.counts()["subject_cutoffs"] == 1
        own_redis.start()
        wait_until(lambda: store.available, timeout=5.0)
        assert store.replica.counts()["subject_cutoffs"] == 0
        assert "store_restored" not in kinds(events)
    finally:
        store.close()


def test_a_hung_redis_never_makes_a_request_wait(
    own_redis: RedisServer, rsa_key: SigningKey, clock: FakeClock, events: list[Event]
) -> None:
    store = make_redis_store(own_redis.url, clock, events, heartbeat=0.2, socket_timeout=0.5)
    opened = make_validator(
        Lifecycle(store, one_time=lambda c: True, on_event=events.append), clock, rsa_key
    )
    first, second = mint(rsa_key, clock), mint(rsa_key, clock)
    try:
        own_redis.pause()
        # A replay check that reaches the hung server waits at most one socket timeout.
        result, took = timed(partial(outcome, opened, first))
        assert (result, took < 1.5) == ("ok", True)
        wait_until(lambda: not store.available, timeout=3.0)
        result, took = timed(partial(outcome, opened, second))
        assert (result, took < 0.25) == ("ok", True)  # known down: no network at all
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            LifecycleAdmin(store).cut_off_subject("s", issuer=ISSUER, by="a", why="b")
        assert time.monotonic() - started < 1.5
        own_redis.resume()
        wait_until(lambda: store.available, timeout=5.0)
        assert kinds(events).count("store_recovered") == 1
    finally:
        own_redis.resume()
        store.close()


def test_close_is_idempotent_and_stops_the_listener(
    redis_server: RedisServer, clock: FakeClock, events: list[Event]
) -> None:
    store = make_redis_store(redis_server.url, clock, events)
    thread = store._thread
    assert thread is not None
    assert thread.is_alive()
    store.close()
    store.close()
    assert not thread.is_alive()
    assert not store.available


@pytest.mark.anyio
async def test_async_context_manager_starts_and_closes(
    redis_server: RedisServer, clock: FakeClock
) -> None:
    async with RedisStore(redis_server.url, prefix="ctx:", clock=clock) as store:
        assert store.available
        assert await store.aclaim_once(ISSUER, "ctx", ttl=5) is True
        assert await store.aclaim_once(ISSUER, "ctx", ttl=5) is False
    assert not store.available


@pytest.mark.parametrize(
    "options",
    [
        {"url": ""},
        {"socket_timeout": 0},
        {"connect_timeout": -1},
        {"heartbeat": True},
        {"resync_interval": "60"},
        {"prefix": 5},
    ],
)
def test_redis_store_rejects_bad_settings(options: dict[str, object]) -> None:
    from jwkguard.errors import ConfigurationError

    settings: dict[str, object] = {"url": "redis://127.0.0.1:1/0", **options}
    with pytest.raises(ConfigurationError):
        RedisStore(**settings)  # type: ignore[arg-type]
