"""The sans-IO JWKS cache: every decision of the remote key source, told the time, no IO."""

from __future__ import annotations

import random

import pytest

from jwkguard import KeysUnavailable, TokenError
from jwkguard.keys import KeySet
from jwkguard.keys._cache import (
    NEGATIVE_CACHE_SIZE,
    Action,
    CachePolicy,
    Failed,
    Fetched,
    JwksCache,
    NotModified,
)
from jwkguard.keys._fetch import server_lifetime
from jwkguard.testing import SigningKey, generate_key

T0 = 1_800_000_000.0
URI = "https://id.example.com/jwks"
POLICY = CachePolicy(default_ttl=600, min_ttl=60, max_ttl=3600, cooldown=30, max_stale=1000)


@pytest.fixture(scope="module")
def second_key() -> SigningKey:
    return generate_key("RS256", kid="rsa-2")


def key_set(*keys: SigningKey) -> KeySet:
    return KeySet.from_jwks({"keys": [dict(k.public_jwk) for k in keys]}, ["RS256", "ES256"])


def fetched(keys: KeySet, lifetime: float | None = 300, etag: str | None = '"v1"') -> Fetched:
    return Fetched(keys, lifetime, URI, etag=etag, digest=str(id(keys)).encode())


def loaded(keys: KeySet, now: float = T0, policy: CachePolicy = POLICY) -> JwksCache:
    cache = JwksCache("https://id.example.com/", policy, jwks_uri=URI, rng=random.Random(7))
    cache.complete(cache.begin_fetch(now), fetched(keys), now)
    return cache


def kinds(events: object) -> list[str]:
    return [event.kind for event in events]  # type: ignore[attr-defined]


# -- lifetimes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"cache-control": "public, max-age=300"}, 300.0),
        ({"cache-control": "max-age=300", "age": "100"}, 200.0),
        ({"cache-control": "max-age=10", "age": "100"}, 0.0),
        ({"cache-control": "no-store"}, 0.0),
        ({"cache-control": "no-cache, max-age=300"}, 0.0),
        ({"cache-control": 'max-age="120"'}, 120.0),
        (
            {"expires": "Thu, 01 Jan 2026 00:10:00 GMT", "date": "Thu, 01 Jan 2026 00:00:00 GMT"},
            600.0,
        ),
        ({"expires": "0", "date": "Thu, 01 Jan 2026 00:00:00 GMT"}, 0.0),
        ({"cache-control": "max-age=abc"}, None),
        ({}, None),
    ],
)
def test_server_lifetime_reads_max_age_age_and_expires(
    headers: dict[str, str], expected: float | None
) -> None:
    assert server_lifetime(headers) == expected


@pytest.mark.parametrize(
    ("server", "expected"), [(None, 600), (5, 60), (0, 60), (300, 300), (10**6, 3600)]
)
def test_lifetime_is_clamped_to_min_and_max_ttl(server: float | None, expected: float) -> None:
    assert POLICY.lifetime(server) == expected


# -- cold start and the hot path -----------------------------------------------------------


def test_empty_cache_asks_to_wait_for_a_fetch(rsa_key: SigningKey) -> None:
    cache = JwksCache("iss", POLICY, jwks_uri=URI)
    assert cache.cached("rsa-1", "RS256", T0) is None
    step = cache.plan("rsa-1", "RS256", T0)
    assert step.action is Action.WAIT
    ticket = cache.begin_fetch(T0)
    assert (ticket.jwks_uri, ticket.etag, ticket.digest) == (URI, None, None)
    events = cache.complete(ticket, fetched(key_set(rsa_key)), T0)
    assert kinds(events) == ["key_added", "refreshed"]
    assert events[0].kid == "rsa-1"
    assert events[0].thumbprint == rsa_key.thumbprint
    final = cache.plan("rsa-1", "RS256", T0, final=True)
    assert final.result()[0].kid == "rsa-1"
    assert cache.cached("rsa-1", "RS256", T0 + 1) is not None


def test_failed_cold_start_is_keys_unavailable_with_retry_after(rsa_key: SigningKey) -> None:
    cache = JwksCache("iss", POLICY, jwks_uri=URI, rng=random.Random(1))
    events = cache.complete(cache.begin_fetch(T0), Failed("timeout", "slow"), T0)
    assert kinds(events) == ["refresh_failed"]
    assert events[0].detail["error"] == "timeout"
    step = cache.plan("rsa-1", "RS256", T0, final=True)
    with pytest.raises(KeysUnavailable) as caught:
        step.result()
    assert caught.value.status_code == 503
    assert caught.value.retry_after >= 1
    # Within the backoff nobody fetches again; after it, the next request may.
    assert cache.plan("rsa-1", "RS256", T0 + 0.1).action is Action.NONE
    assert cache.plan("rsa-1", "RS256", T0 + 1.01).action is Action.WAIT


def test_fresh_key_is_answered_by_the_hot_path_without_any_decision(rsa_key: SigningKey) -> None:
    cache = loaded(key_set(rsa_key))
    found = cache.cached("rsa-1", "RS256", T0 + 100)
    assert found is not None
    assert found[0].thumbprint == rsa_key.thumbprint
    assert cache.plan("rsa-1", "RS256", T0 + 100).action is Action.NONE


# -- refresh ahead, expiry, 304 -------------------------------------------------------------


def test_refresh_starts_ahead_of_expiry_without_making_anyone_wait(rsa_key: SigningKey) -> None:
    cache = loaded(key_set(rsa_key))
    assert cache.cached("rsa-1", "RS256", T0 + 239) is not None
    assert cache.cached("rsa-1", "RS256", T0 + 241) is None
    step = cache.plan("rsa-1", "RS256", T0 + 241)
    assert step.action is Action.AHEAD
    assert step.match is not None
    cache.begin_fetch(T0 + 241)
    # While that refresh runs, nobody starts another.
    assert cache.plan("rsa-1", "RS256", T0 + 242).action is Action.NONE


def test_expired_keys_without_failures_are_revalidated_first(rsa_key: SigningKey) -> None:
    cache = loaded(key_set(rsa_key))
    step = cache.plan("rsa-1", "RS256", T0 + 301)
    assert step.action is Action.WAIT


def test_not_modified_extends_the_cache_and_keeps_the_same_key_set(rsa_key: SigningKey) -> None:
    keys = key_set(rsa_key)
    cache = loaded(keys)
    ticket = cache.begin_fetch(T0 + 250)
    assert ticket.etag == '"v1"'
    events = cache.complete(ticket, NotModified(300, URI), T0 + 250)
    assert kinds(events) == ["not_modified"]
    assert cache.usable_keys(T0 + 250) is keys
    assert cache.status(T0 + 250).expires_at == T0 + 550
    assert cache.cached("rsa-1", "RS256", T0 + 400) is not None


def test_identical_keys_keep_the_key_set_object_and_changes_replace_it(
    rsa_key: SigningKey, second_key: SigningKey
) -> None:
    first = key_set(rsa_key)
    cache = loaded(first)
    events = cache.complete(cache.begin_fetch(T0 + 10), fetched(key_set(rsa_key)), T0 + 10)
    assert kinds(events) == ["refreshed"]
    assert events[0].detail["changed"] is False
    assert cache.usable_keys(T0 + 10) is first
    rotated = key_set(rsa_key, second_key)
    events = cache.complete(cache.begin_fetch(T0 + 20), fetched(rotated), T0 + 20)
    assert kinds(events) == ["key_added", "refreshed"]
    assert cache.usable_keys(T0 + 20) is rotated
    retired = key_set(second_key)
    events = cache.complete(cache.begin_fetch(T0 + 30), fetched(retired), T0 + 30)
    assert kinds(events) == ["key_removed", "refreshed"]
    assert (events[0].kid, events[0].thumbprint) == ("rsa-1", rsa_key.thumbprint)
    assert cache.plan("rsa-1", "RS256", T0 + 30).match is None


def test_an_older_response_never_overwrites_a_newer_one(
    rsa_key: SigningKey, second_key: SigningKey
) -> None:
    cache = loaded(key_set(rsa_key))
    older = cache.begin_fetch(T0 + 10)
    newer = cache.begin_fetch(T0 + 11)
    new_keys = key_set(second_key)
    cache.complete(newer, fetched(new_keys), T0 + 12)
    assert cache.complete(older, fetched(key_set(rsa_key)), T0 + 13) == ()
    assert cache.usable_keys(T0 + 13) is new_keys
    # Nor does an older failure count against the newer success.
    third = cache.begin_fetch(T0 + 14)
    fourth = cache.begin_fetch(T0 + 14)
    cache.complete(fourth, NotModified(300, URI), T0 + 15)
    assert cache.complete(third, Failed("timeout", "late"), T0 + 16) == ()
    assert cache.status(T0 + 16).consecutive_failures == 0


# -- failures, backoff, staleness -----------------------------------------------------------


def test_backoff_doubles_with_jitter_up_to_the_cap(rsa_key: SigningKey) -> None:
    policy = CachePolicy(backoff_base=1, backoff_cap=8, max_stale=10**6)
    cache = loaded(key_set(rsa_key), policy=policy)
    now = T0 + 700
    delays = []
    for _ in range(6):
        cache.complete(cache.begin_fetch(now), Failed("http_status", "503"), now)
        retry_at = cache.status(now).next_retry_at
        assert retry_at is not None
        delays.append(retry_at - now)
    for failures, delay in enumerate(delays, start=1):
        nominal = min(8, 2 ** (failures - 1))
        assert nominal * 0.5 <= delay <= nominal
    assert delays[-1] <= 8


def test_failed_refresh_keeps_keys_then_serves_stale_then_gives_up(rsa_key: SigningKey) -> None:
    cache = loaded(key_set(rsa_key))  # expires T0+300, max_stale 1000
    events = cache.complete(cache.begin_fetch(T0 + 250), Failed("timeout", "hung"), T0 + 250)
    assert kinds(events) == ["refresh_failed"]
    assert events[0].detail["keys_held"] is True
    fresh = cache.plan("rsa-1", "RS256", T0 + 250.1)
    assert (fresh.match is not None, fresh.events) == (True, ())
    stale = cache.plan("rsa-1", "RS256", T0 + 301)
    assert stale.match is not None
    assert kinds(stale.events) == ["serving_stale"]
    assert stale.action is Action.AHEAD  # retries go on in the background, nobody waits
    assert cache.status(T0 + 301).serving_stale is True
    again = cache.plan("rsa-1", "RS256", T0 + 302, final=True)
    assert again.events == ()  # reported once per outage
    gone = cache.plan("rsa-1", "RS256", T0 + 1301)
    assert kinds(gone.events) == ["keys_unavailable"]
    assert gone.action is Action.WAIT
    assert cache.usable_keys(T0 + 1301) is None
    with pytest.raises(KeysUnavailable):
        cache.plan("rsa-1", "RS256", T0 + 1301, final=True).result()


def test_first_success_after_failures_is_reported_as_recovered(rsa_key: SigningKey) -> None:
    cache = loaded(key_set(rsa_key))
    cache.complete(cache.begin_fetch(T0 + 250), Failed("http_status", "503"), T0 + 250)
    cache.complete(cache.begin_fetch(T0 + 260), Failed("http_status", "503"), T0 + 260)
    events = cache.complete(cache.begin_fetch(T0 + 320), NotModified(300, URI), T0 + 320)
    assert kinds(events) == ["recovered"]
    assert events[0].detail["failures"] == 2
    status = cache.status(T0 + 320)
    assert (status.consecutive_failures, status.last_error, status.serving_stale) == (
        0,
        None,
        False,
    )


def test_not_modified_without_keys_is_a_failure() -> None:
    cache = JwksCache("iss", POLICY, jwks_uri=URI)
    events = cache.complete(cache.begin_fetch(T0), NotModified(300, URI), T0)
    assert kinds(events) == ["refresh_failed"]


# -- unknown kids ---------------------------------------------------------------------------


def test_unknown_kid_gets_one_refetch_then_the_cooldown(rsa_key: SigningKey) -> None:
    cache = loaded(key_set(rsa_key))
    first = cache.plan("forged-1", "RS256", T0 + 10)
    assert first.action is Action.WAIT
    # A concurrent miss for another kid shares the refetch already due.
    assert cache.plan("forged-2", "RS256", T0 + 10).action is Action.WAIT
    cache.complete(cache.begin_fetch(T0 + 10), fetched(key_set(rsa_key)), T0 + 10)
    final = cache.plan("forged-1", "RS256", T0 + 10, final=True)
    assert kinds(final.events) == ["unknown_kid"]
    assert final.events[0].kid == "forged-1"
    with pytest.raises(TokenError) as caught:
        final.result()
    assert caught.value.reason == "unknown_key"
    # Within the cooldown, misses are refused without a fetch, reported once.
    refused = cache.plan("forged-3", "RS256", T0 + 20)
    assert (refused.action, kinds(refused.events)) == (Action.NONE, ["cooldown_hit"])
    assert cache.plan("forged-4", "RS256", T0 + 21).events == ()
    # After the cooldown, one more refetch is allowed.
    assert cache.plan("forged-5", "RS256", T0 + 41).action is Action.WAIT


def test_remembered_unknown_kid_costs_no_fetch_and_no_event(rsa_key: SigningKey) -> None:
    cache = loaded(key_set(rsa_key))
    cache.plan("forged", "RS256", T0 + 10)
    cache.complete(cache.begin_fetch(T0 + 10), NotModified(300, URI), T0 + 10)
    cache.plan("forged", "RS256", T0 + 10, final=True)
    step = cache.plan("forged", "RS256", T0 + 15)
    assert (step.action, step.events, step.match) == (Action.NONE, (), None)


def test_during_a_reported_cooldown_any_unknown_kid_is_refused_without_the_lock(
    rsa_key: SigningKey,
) -> None:
    cache = loaded(key_set(rsa_key))
    cache.plan("forged-1", "RS256", T0 + 10)
    cache.complete(cache.begin_fetch(T0 + 10), NotModified(300, URI), T0 + 10)
    cache.plan("forged-1", "RS256", T0 + 10, final=True)
    cache.refuse_if_remembered("never-seen", T0 + 11)  # no cooldown refusal reported yet
    assert kinds(cache.plan("forged-2", "RS256", T0 + 11).events) == ["cooldown_hit"]
    for kid in ("never-seen", "another"):
        with pytest.raises(TokenError):
            cache.refuse_if_remembered(kid, T0 + 12)
    with pytest.raises(TokenError):
        cache.cached("another", "RS256", T0 + 12)
    cache.refuse_if_remembered("never-seen", T0 + 40)  # the window is over
    assert cache.plan("never-seen", "RS256", T0 + 40).action is Action.WAIT
    cache.request_refresh()
    cache.refuse_if_remembered("fresh", T0 + 41)


def test_known_kid_with_another_alg_never_refetches(rsa_key: SigningKey) -> None:
    cache = loaded(key_set(rsa_key))
    step = cache.plan("rsa-1", "ES256", T0 + 10)
    assert (step.action, step.match) == (Action.NONE, None)


def test_negative_cache_is_bounded(rsa_key: SigningKey) -> None:
    cache = loaded(key_set(rsa_key))
    cache.plan("first", "RS256", T0 + 1)  # claims the refetch; the rest hit the cooldown
    cache.complete(cache.begin_fetch(T0 + 1), NotModified(300, URI), T0 + 1)
    for number in range(NEGATIVE_CACHE_SIZE + 10):
        cache.plan(f"forged-{number}", "RS256", T0 + 2)
    assert len(cache._s.unknown) <= NEGATIVE_CACHE_SIZE


def test_unknown_kid_events_are_rate_limited_and_sanitised(rsa_key: SigningKey) -> None:
    policy = CachePolicy(cooldown=0)  # every miss may refetch: events are the only limit
    cache = loaded(key_set(rsa_key), policy=policy)
    reported = []
    for number in range(50):
        now = T0 + 1 + number * 0.01
        cache.plan(f"evil\n{number}" + "x" * 500, "RS256", now)
        cache.complete(cache.begin_fetch(now), NotModified(300, URI), now)
        reported += cache.plan(f"evil\n{number}" + "x" * 500, "RS256", now, final=True).events
    assert 1 <= len(reported) <= 10
    assert all(e.kid is not None and len(e.kid) <= 70 and "\n" not in e.kid for e in reported)


# -- requests from outside ------------------------------------------------------------------


def test_request_refresh_makes_the_next_lookup_refresh_once(rsa_key: SigningKey) -> None:
    cache = loaded(key_set(rsa_key))
    cache.request_refresh()
    assert cache.cached("rsa-1", "RS256", T0 + 1) is None
    step = cache.plan("rsa-1", "RS256", T0 + 1)
    assert (step.action, step.match is not None) == (Action.AHEAD, True)
    cache.complete(cache.begin_fetch(T0 + 1), NotModified(300, URI), T0 + 2)
    assert cache.cached("rsa-1", "RS256", T0 + 3) is not None


def test_request_refresh_during_a_fetch_asks_for_another(rsa_key: SigningKey) -> None:
    cache = loaded(key_set(rsa_key))
    ticket = cache.begin_fetch(T0 + 1)
    cache.request_refresh()
    cache.complete(ticket, NotModified(300, URI), T0 + 2)
    assert cache.cached("rsa-1", "RS256", T0 + 3) is None
    assert cache.plan("rsa-1", "RS256", T0 + 3).action is Action.AHEAD


def test_status_snapshot_lists_keys_and_times(rsa_key: SigningKey) -> None:
    cache = loaded(key_set(rsa_key))
    status = cache.status(T0 + 5)
    assert status.ready
    assert status.kids == ("rsa-1",)
    assert status.thumbprints == (rsa_key.thumbprint,)
    assert (status.fetched_at, status.expires_at, status.stale_until) == (
        T0,
        T0 + 300,
        T0 + 1300,
    )
    assert (status.jwks_uri, status.fetches, status.next_retry_at) == (URI, 1, None)
    empty = JwksCache("iss", POLICY).status(T0)
    assert (empty.ready, empty.fetched_at, empty.expires_at) == (False, None, None)
