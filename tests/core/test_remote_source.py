"""The remote key source over real HTTP (sync driver): rotation, retirement, outages, floods."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from jwkguard import Issuer, KeysUnavailable, TokenError, Validator
from jwkguard.errors import IssuerMismatch, KeyNotFound
from jwkguard.keys._remote import RemoteKeySource
from jwkguard.testing import LocalIssuer, generate_key, mint_token

from ..conftest import FakeClock
from ._remote_support import JWKS, LONG, Events, forged, remote_validator, token, wait_until


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def validator(local_issuer: LocalIssuer, clock: FakeClock, events: Events) -> Iterator[Validator]:
    with remote_validator(local_issuer, clock, events, max_stale=3600) as validator:
        yield validator


def source_of(validator: Validator, issuer: LocalIssuer) -> RemoteKeySource:
    source = validator.key_source(issuer.url)
    assert isinstance(source, RemoteKeySource)
    return source


def test_construction_does_no_io(local_issuer: LocalIssuer, clock: FakeClock) -> None:
    with remote_validator(local_issuer, clock, discovery=True):
        pass
    assert sum(local_issuer.requests.values()) == 0


def test_first_request_fetches_once_then_serves_from_cache(
    validator: Validator, local_issuer: LocalIssuer, clock: FakeClock, events: Events
) -> None:
    for _ in range(5):
        assert validator.validate(token(local_issuer, clock)).issuer == local_issuer.url
    assert local_issuer.requests[JWKS] == 1
    assert events.kinds() == ["key_added", "refreshed"]
    added = events.of("key_added")[0]
    assert (added.issuer, added.kid, added.thumbprint, added.timestamp) == (
        local_issuer.url,
        local_issuer.active_key.kid,
        local_issuer.active_key.thumbprint,
        clock.now,
    )


def test_rotation_new_kid_is_accepted_without_restart(
    validator: Validator, local_issuer: LocalIssuer, clock: FakeClock, events: Events
) -> None:
    validator.validate(token(local_issuer, clock))
    new_key = local_issuer.rotate()
    claims = validator.validate(token(local_issuer, clock))
    assert claims.key_id == new_key.kid
    assert local_issuer.requests[JWKS] == 2
    assert [e.kid for e in events.of("key_added")][-1] == new_key.kid


def test_retired_kid_is_refused_after_the_next_good_refresh(
    validator: Validator, local_issuer: LocalIssuer, clock: FakeClock, events: Events
) -> None:
    old_token = token(local_issuer, clock)
    validator.validate(old_token)
    old_kid = local_issuer.active_key.kid
    local_issuer.rotate(retire_old=True)
    validator.validate(old_token)  # still cached: the issuer's change is not known yet
    clock.advance(241)  # into the refresh-ahead window (80% of max-age=300)
    validator.validate(token(local_issuer, clock))  # this caller refreshes
    assert [e.kid for e in events.of("key_removed")] == [old_kid]
    with pytest.raises(KeyNotFound):
        validator.validate(old_token)


def test_cache_control_sets_the_lifetime_within_bounds(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    local_issuer.cache_control = "max-age=5"
    with remote_validator(local_issuer, clock, min_ttl=60) as validator:
        validator.validate(token(local_issuer, clock))
        status = source_of(validator, local_issuer).status()
    assert status.expires_at is not None
    assert status.fetched_at is not None
    assert status.expires_at - status.fetched_at == 60


def test_conditional_refresh_gets_304_and_keeps_the_key_set(
    validator: Validator, local_issuer: LocalIssuer, clock: FakeClock, events: Events
) -> None:
    validator.validate(token(local_issuer, clock))
    source = source_of(validator, local_issuer)
    keys = source.current_keys()
    first_expiry = source.status().expires_at
    clock.advance(241)
    validator.validate(token(local_issuer, clock))  # refresh ahead, on a background thread
    wait_until(lambda: "not_modified" in events.kinds())
    assert local_issuer.requests[JWKS] == 2
    assert local_issuer.last_headers[JWKS].get("If-None-Match", "").startswith('"')
    assert events.kinds()[-1] == "not_modified"
    assert source.current_keys() is keys
    assert source.status().expires_at == pytest.approx(clock.now + 300)
    assert first_expiry is not None
    assert source.status().expires_at > first_expiry


def test_stale_keys_serve_within_max_stale_then_keys_unavailable(
    validator: Validator, local_issuer: LocalIssuer, clock: FakeClock, events: Events
) -> None:
    good = token(local_issuer, clock)
    validator.validate(good)
    with local_issuer.outage(503):
        clock.advance(301)  # expired; the refresh fails; the last good keys still serve
        assert validator.validate(good).subject == "user-123"
        assert "refresh_failed" in events.kinds()
        assert events.kinds()[-1] == "serving_stale"
        assert source_of(validator, local_issuer).status().serving_stale
        clock.advance(3600)  # past max_stale
        with pytest.raises(KeysUnavailable) as caught:
            validator.validate(good)
        assert (caught.value.status_code, caught.value.error) == (503, "temporarily_unavailable")
        assert "keys_unavailable" in events.kinds()
        assert source_of(validator, local_issuer).current_keys() is None
    clock.advance(61)  # past any backoff
    assert validator.validate(good).subject == "user-123"
    assert events.kinds()[-1] == "recovered"


def test_failures_back_off_instead_of_hammering_the_issuer(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    local_issuer.fail_with(503)
    with remote_validator(local_issuer, clock) as validator:
        good = token(local_issuer, clock)
        for _ in range(20):
            with pytest.raises(KeysUnavailable) as caught:
                validator.validate(good)
        assert local_issuer.requests[JWKS] == 1
        assert 1 <= caught.value.retry_after <= 300
        clock.advance(1.01)  # the first backoff is at most one second
        with pytest.raises(KeysUnavailable):
            validator.validate(good)
        assert local_issuer.requests[JWKS] == 2
        local_issuer.heal()
        clock.advance(2.01)
        assert validator.validate(good).subject == "user-123"


def test_flood_of_unknown_kids_costs_at_most_one_fetch_per_cooldown(
    validator: Validator, local_issuer: LocalIssuer, clock: FakeClock, events: Events
) -> None:
    validator.validate(token(local_issuer, clock))
    for _ in range(1000):
        with pytest.raises(KeyNotFound):
            validator.validate(forged(local_issuer, clock))
    assert local_issuer.requests[JWKS] <= 2
    assert len(events.of("cooldown_hit")) == 1
    assert len(events.of("unknown_kid")) <= 10
    before = local_issuer.requests[JWKS]
    clock.advance(30)
    for _ in range(1000):
        with pytest.raises(KeyNotFound):
            validator.validate(forged(local_issuer, clock))
    assert local_issuer.requests[JWKS] <= before + 1
    # The real key still validates, from the cache.
    assert validator.validate(token(local_issuer, clock)).subject == "user-123"


def test_hundred_threads_missing_a_key_share_exactly_one_fetch(
    validator: Validator, local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    validator.validate(token(local_issuer, clock))
    local_issuer.rotate()
    rotated = token(local_issuer, clock)
    start = threading.Barrier(100, timeout=10)
    results: list[object] = []

    def call() -> None:
        start.wait()
        try:
            results.append(validator.validate(rotated).key_id)
        except TokenError as exc:
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == [local_issuer.active_key.kid] * 100
    assert local_issuer.requests[JWKS] == 2


def test_hundred_threads_on_a_cold_cache_share_exactly_one_fetch(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    local_issuer.slow_body(0.3)  # keep the fetch in flight while everyone arrives
    with remote_validator(local_issuer, clock, timeout=2) as validator:
        good = token(local_issuer, clock)
        start = threading.Barrier(100, timeout=10)
        results: list[object] = []

        def call() -> None:
            start.wait()
            results.append(validator.validate(good).subject)

        threads = [threading.Thread(target=call) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert results == ["user-123"] * 100
    assert local_issuer.requests[JWKS] == 1


def test_known_kid_is_answered_promptly_while_another_callers_refresh_hangs(
    local_issuer: LocalIssuer, clock: FakeClock, events: Events
) -> None:
    with remote_validator(local_issuer, clock, events, timeout=2.0) as validator:
        good = token(local_issuer, clock)
        validator.validate(good)
        local_issuer.hang(10, paths={JWKS})
        clock.advance(241)  # refresh due, keys still fresh
        slowest = 0.0
        # The first call starts the refresh (on a background thread); none of them waits.
        for _ in range(6):
            started = time.perf_counter()
            assert validator.validate(good).subject == "user-123"
            slowest = max(slowest, time.perf_counter() - started)
        wait_until(lambda: local_issuer.requests[JWKS] == 2)
        assert "refresh_failed" not in events.kinds()  # the refresh is still hanging
        wait_until(lambda: "refresh_failed" in events.kinds(), timeout=10)
        local_issuer.heal()
    assert slowest < 0.5  # the refresh hangs for two seconds


def test_refresh_fetches_now_and_request_refresh_marks_due(
    validator: Validator, local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    validator.validate(token(local_issuer, clock))
    source = source_of(validator, local_issuer)
    assert source.refresh() is True
    assert local_issuer.requests[JWKS] == 2
    validator.validate(token(local_issuer, clock))
    assert local_issuer.requests[JWKS] == 2
    threading.Thread(target=source.request_refresh).start()
    wait_until(lambda: source._cache.cached("x", "RS256", clock.now) is None)
    validator.validate(token(local_issuer, clock))  # served at once; refreshes behind
    wait_until(lambda: local_issuer.requests[JWKS] == 3)
    validator.validate(token(local_issuer, clock))
    assert local_issuer.requests[JWKS] == 3
    with local_issuer.outage():
        assert source.refresh() is False
        assert (source.status().last_error or "").startswith("http_status")


def test_current_keys_is_a_new_object_only_when_keys_change(
    validator: Validator, local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    source = source_of(validator, local_issuer)
    assert source.current_keys() is None
    validator.validate(token(local_issuer, clock))
    first = source.current_keys()
    source.refresh()
    assert source.current_keys() is first
    local_issuer.rotate()
    source.refresh()
    second = source.current_keys()
    assert second is not first
    assert second is not None
    assert len(second) == 2


def test_warm_up_fetches_ahead_and_is_bounded(local_issuer: LocalIssuer, clock: FakeClock) -> None:
    with remote_validator(local_issuer, clock) as validator:
        validator.warm_up()
        assert local_issuer.requests[JWKS] == 1
        validator.warm_up()  # fresh: nothing to do
        assert local_issuer.requests[JWKS] == 1
    local_issuer.hang(10)
    with remote_validator(local_issuer, clock, timeout=0.3) as validator:
        started = time.perf_counter()
        with pytest.raises(KeysUnavailable) as caught:
            validator.warm_up()
        assert time.perf_counter() - started < 1.5
    assert "timeout" in str(caught.value.__cause__)


def test_unknown_issuer_is_refused_without_network_traffic(
    clock: FakeClock,
) -> None:
    with LocalIssuer() as first, LocalIssuer(audience="https://other.example") as second:
        issuers = [
            first.issuer_config(jwks_uri=first.jwks_uri, timeout=0.5),
            second.issuer_config(timeout=0.5),  # by discovery
        ]
        with Validator(issuers=issuers, algorithms=["RS256"], clock=clock) as validator:
            stranger = mint_token(
                first.active_key, issuer="https://evil.example", audience=first.audience
            )
            with pytest.raises(IssuerMismatch):
                validator.validate(stranger)
            assert sum(first.requests.values()) + sum(second.requests.values()) == 0
            assert validator.validate(token(first, clock)).issuer == first.url
            assert validator.validate(token(second, clock)).issuer == second.url
            # A token naming the first issuer but signed with the second's key finds no key.
            crossed = mint_token(
                second.active_key,
                issuer=first.url,
                audience=first.audience,
                now=clock.now,
                lifetime=LONG,
            )
            with pytest.raises(KeyNotFound):
                validator.validate(crossed)
            assert second.requests[JWKS] == 1


def test_issuers_sharing_a_jwks_uri_share_one_cache_and_fetch(
    local_issuer: LocalIssuer, clock: FakeClock, events: Events
) -> None:
    tenants = [f"{local_issuer.url}/tenant-{n}" for n in range(3)]
    issuers = [
        Issuer(name, audiences=[local_issuer.audience], jwks_uri=local_issuer.jwks_uri, timeout=0.5)
        for name in tenants
    ]
    with Validator(issuers=issuers, algorithms=["RS256"], clock=clock, on_event=events) as v:
        for name in tenants:
            assert v.validate(token(local_issuer, clock, issuer=name)).issuer == name
        sources = [v.key_source(name) for name in tenants]
        assert all(isinstance(s, RemoteKeySource) and s.shares_endpoint for s in sources)
        assert sources[0].current_keys() is sources[2].current_keys()
        assert [s.status().issuer for s in sources] == tenants  # type: ignore[attr-defined]
    assert local_issuer.requests[JWKS] == 1
    assert sorted(e.issuer for e in events.of("key_added")) == sorted(tenants)


def test_issuers_with_different_cache_settings_do_not_share(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    issuers = [
        Issuer("a", audiences=["x"], jwks_uri=local_issuer.jwks_uri, cooldown=5),
        Issuer("b", audiences=["x"], jwks_uri=local_issuer.jwks_uri, cooldown=6),
    ]
    with Validator(issuers=issuers, algorithms=["RS256"], clock=clock) as validator:
        source = validator.key_source("a")
        assert isinstance(source, RemoteKeySource)
        assert not source.shares_endpoint


def test_close_releases_the_client_and_a_later_fetch_reopens(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    validator = remote_validator(local_issuer, clock)
    validator.validate(token(local_issuer, clock))
    validator.close()
    validator.close()  # idempotent
    source_of(validator, local_issuer).refresh()
    assert local_issuer.requests[JWKS] == 2
    validator.close()


def test_event_handler_errors_never_break_validation(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("handler bug")

    with Validator(
        issuers=[local_issuer.issuer_config(jwks_uri=local_issuer.jwks_uri)],
        algorithms=["RS256"],
        clock=clock,
        on_event=broken,
    ) as validator:
        assert validator.validate(token(local_issuer, clock)).subject == "user-123"


def test_ec_issuer_keys_are_fetched_too(clock: FakeClock) -> None:
    with (
        LocalIssuer(alg="ES256") as issuer,
        Validator(
            issuers=[issuer.issuer_config(jwks_uri=issuer.jwks_uri)],
            algorithms=["ES256"],
            clock=clock,
        ) as validator,
    ):
        assert validator.validate(token(issuer, clock)).subject == "user-123"
        # A key of a kind the validator does not allow is not usable.
        other = generate_key("RS256")
        issuer.extra_jwks.append(other.public_jwk)
        source_of(validator, issuer).refresh()
        keys = source_of(validator, issuer).current_keys()
        assert keys is not None
        assert len(keys) == 1
