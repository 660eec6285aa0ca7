"""Introspection: only outages open the breaker; a 4xx about one token is that token's answer.

A client controls the tokens it sends, so nothing a token makes the authorization server
answer may open the circuit breaker (which would refuse every valid token for ``reset_after``)
or let fail-open skip the check.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from jwkguard import Event, RequestPipeline, RoutePolicy, TokenError, Validator
from jwkguard.sender._introspection import Introspector
from jwkguard.testing import IntrospectionEndpoint, LocalIssuer

from ..conftest import FakeClock, closed_after_the_test
from .kit import bearer_view


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def events() -> list[Event]:
    return []


def _introspector(
    endpoint: IntrospectionEndpoint, clock: FakeClock, events: list[Event], **options: Any
) -> Introspector:
    introspector = Introspector(
        endpoint=endpoint.url,
        client_id=endpoint.client_id,
        client_secret=endpoint.client_secret,
        clock=clock,
        timeout=2,
        failure_threshold=3,
        on_event=events.append,
        **options,
    )
    return closed_after_the_test(introspector)


def _reason(introspector: Introspector, token: str) -> tuple[int, str]:
    with pytest.raises(TokenError) as caught:
        introspector.introspect(token)
    return caught.value.status_code, caught.value.reason


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "invalid_request"),
        (400, "unsupported_token_type"),
        (400, "invalid_token"),
        (413, "request_too_large"),
        (431, "headers_too_large"),
    ],
)
def test_junk_tokens_answered_with_a_4xx_never_open_the_breaker(
    endpoint: IntrospectionEndpoint,
    clock: FakeClock,
    events: list[Event],
    status: int,
    error: str,
) -> None:
    endpoint.opaque_tokens["good"] = {"sub": "svc", "exp": clock.now + 600}
    introspector = _introspector(endpoint, clock, events)
    for n in range(10):  # far past failure_threshold=3
        endpoint.token_errors[f"junk-{n}"] = (status, error)
        assert _reason(introspector, f"junk-{n}") == (401, "introspection_refused")
    assert not introspector.breaker_open
    claims = introspector.introspect("good")
    assert claims is not None
    assert claims.subject == "svc"
    refused = [e for e in events if e.kind == "introspection_refused"]
    assert len(refused) == 10
    assert refused[0].detail == {"endpoint": endpoint.url, "status": status, "error": error}
    assert not [e for e in events if e.kind == "introspection_unavailable"]


def test_a_per_token_refusal_is_cached_like_an_inactive_answer(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint, clock: FakeClock, events: list[Event]
) -> None:
    endpoint.token_errors["junk"] = (400, "unsupported_token_type")
    introspector = _introspector(endpoint, clock, events, inactive_ttl=5)
    for _ in range(3):
        assert _reason(introspector, "junk") == (401, "introspection_refused")
    assert issuer.requests["/introspect"] == 1
    clock.advance(6)
    assert _reason(introspector, "junk") == (401, "introspection_refused")
    assert issuer.requests["/introspect"] == 2


@pytest.mark.parametrize("fail_open", [False, True], ids=["fail_closed", "fail_open"])
@pytest.mark.parametrize(
    ("status", "error"),
    [(401, "invalid_client"), (403, "access_denied"), (400, "invalid_client"), (404, "")],
)
def test_an_endpoint_that_rejects_this_resource_server_is_503_and_never_fails_open(
    endpoint: IntrospectionEndpoint,
    clock: FakeClock,
    events: list[Event],
    status: int,
    error: str,
    fail_open: bool,
) -> None:
    """Wrong client credentials are the same answer for every token: not the token's fault
    (so no 401 to the client), not an outage (so fail-open does not wave tokens through), and
    not counted by the breaker."""
    introspector = _introspector(endpoint, clock, events, fail_open=fail_open)
    for n in range(5):
        endpoint.token_errors[f"t{n}"] = (status, error)
        assert _reason(introspector, f"t{n}") == (503, "introspection_rejected")
    assert not introspector.breaker_open
    assert [e.kind for e in events] == ["introspection_rejected"] * 5


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_answers_count_as_an_outage_and_open_the_breaker(
    issuer: LocalIssuer,
    endpoint: IntrospectionEndpoint,
    clock: FakeClock,
    events: list[Event],
    status: int,
) -> None:
    endpoint.opaque_tokens["t"] = {"sub": "svc"}
    introspector = _introspector(endpoint, clock, events, reset_after=30)
    issuer.fail_with(status)
    for _ in range(3):
        assert _reason(introspector, "t") == (503, "introspection_unavailable")
    assert introspector.breaker_open
    assert [e.kind for e in events] == ["introspection_unavailable"]
    assert events[0].detail["status"] == status
    issuer.heal()
    clock.advance(40)
    assert introspector.introspect("t") is not None
    assert [e.kind for e in events] == ["introspection_unavailable", "introspection_recovered"]


def test_a_429_with_retry_after_opens_the_breaker_at_once_for_that_long(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint, clock: FakeClock, events: list[Event]
) -> None:
    endpoint.opaque_tokens["t"] = {"sub": "svc"}
    introspector = _introspector(endpoint, clock, events, reset_after=5)
    issuer.fail_with(429, retry_after=20)
    with pytest.raises(TokenError) as caught:
        introspector.introspect("t")
    assert caught.value.status_code == 503
    assert caught.value.retry_after == 20  # type: ignore[attr-defined]
    assert introspector.breaker_open, "back-pressure opens the breaker on the first 429"
    issuer.heal()
    clock.advance(10)
    calls = issuer.requests["/introspect"]
    assert _reason(introspector, "t") == (503, "introspection_unavailable")
    assert issuer.requests["/introspect"] == calls, "no call before Retry-After has passed"
    clock.advance(11)
    assert introspector.introspect("t") is not None


def test_a_429_without_retry_after_counts_like_a_5xx(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint, clock: FakeClock, events: list[Event]
) -> None:
    introspector = _introspector(endpoint, clock, events)
    issuer.fail_with(429)
    assert _reason(introspector, "t") == (503, "introspection_unavailable")
    assert not introspector.breaker_open
    for _ in range(2):
        _reason(introspector, "t")
    assert introspector.breaker_open


def test_a_refused_token_between_outage_answers_does_not_hide_the_outage_from_fail_open(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint, clock: FakeClock, events: list[Event]
) -> None:
    """Fail-open passes a token only for an outage; a per-token 4xx refuses under it too."""
    endpoint.token_errors["junk"] = (400, "unsupported_token_type")
    introspector = _introspector(endpoint, clock, events, fail_open=True)
    assert _reason(introspector, "junk") == (401, "introspection_refused")
    issuer.fail_with(503)
    assert introspector.introspect("other") is None  # the outage: the caller decides


# -- hybrid mode through the request pipeline ----------------------------------------------


@pytest.mark.parametrize("fail_open", [False, True], ids=["fail_closed", "fail_open"])
def test_hybrid_a_jwt_the_server_will_not_introspect_is_refused_under_either_policy(
    issuer: LocalIssuer,
    endpoint: IntrospectionEndpoint,
    clock: FakeClock,
    events: list[Event],
    fail_open: bool,
) -> None:
    """Some servers answer ``400 unsupported_token_type`` for JWTs: a route that asked for the
    revocation check cannot have it, which is not an outage, so the token is refused (401)."""
    validator = Validator(issuers=[issuer.issuer_config()], algorithms=["RS256"])
    introspector = _introspector(endpoint, clock, events, fail_open=fail_open)
    pipeline = RequestPipeline(validator, introspector=introspector)
    token = issuer.mint()
    endpoint.token_errors[token] = (400, "unsupported_token_type")
    hybrid = RoutePolicy(introspect=True)
    assert pipeline.run(bearer_view(token), RoutePolicy()).allowed  # local-only routes: unaffected
    decision = pipeline.run(bearer_view(token), hybrid)
    assert decision.response is not None
    assert decision.response.status_code == 401
    assert decision.response.body["reason"] == "introspection_refused"
    # Another client's valid token still passes: the refusal opened nothing.
    other = issuer.mint(subject="someone-else")
    assert pipeline.run(bearer_view(other), hybrid).allowed
    validator.close()


@pytest.mark.parametrize("fail_open", [False, True], ids=["fail_closed", "fail_open"])
def test_hybrid_junk_tokens_cannot_turn_valid_tokens_into_503s(
    issuer: LocalIssuer,
    endpoint: IntrospectionEndpoint,
    clock: FakeClock,
    events: list[Event],
    fail_open: bool,
) -> None:
    validator = Validator(issuers=[issuer.issuer_config()], algorithms=["RS256"])
    pipeline = RequestPipeline(
        validator, introspector=_introspector(endpoint, clock, events, fail_open=fail_open)
    )
    hybrid = RoutePolicy(introspect=True)
    for n in range(6):
        junk = issuer.mint(subject=f"attacker-{n}")
        endpoint.token_errors[junk] = (400, "invalid_request")
        assert pipeline.run(bearer_view(junk), hybrid).response is not None
    assert pipeline.run(bearer_view(issuer.mint()), hybrid).allowed
    validator.close()


def test_hybrid_fail_open_passes_a_locally_valid_jwt_only_during_an_outage(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint, clock: FakeClock, events: list[Event]
) -> None:
    validator = Validator(issuers=[issuer.issuer_config()], algorithms=["RS256"])
    pipeline = RequestPipeline(
        validator, introspector=_introspector(endpoint, clock, events, fail_open=True)
    )
    token = issuer.mint()
    endpoint.revoked.add(token)
    hybrid = RoutePolicy(introspect=True)
    refused = pipeline.run(bearer_view(token), hybrid)
    assert refused.response is not None
    assert refused.response.body["reason"] == "inactive"
    fresh = issuer.mint(subject="fresh")
    issuer.fail_with(503, paths={"/introspect"})
    assert pipeline.run(bearer_view(fresh), hybrid).allowed  # outage: fail-open
    validator.close()
