"""RFC 7662 introspection: client authentication, caching, inactive tokens, the circuit breaker."""

from __future__ import annotations

import time
from typing import Any

import pytest

from jwkguard import TokenError
from jwkguard.sender._introspection import Introspector
from jwkguard.testing import IntrospectionEndpoint, LocalIssuer, generate_key

from ..conftest import FakeClock, closed_after_the_test


@pytest.fixture
def clock() -> FakeClock:
    # The local endpoint judges tokens by the real time, so the test clock starts there.
    return FakeClock(time.time())


def _introspector(
    endpoint: IntrospectionEndpoint, clock: FakeClock, **options: Any
) -> Introspector:
    options.setdefault("client_secret", endpoint.client_secret)
    introspector = Introspector(
        endpoint=endpoint.url, client_id=endpoint.client_id, clock=clock, timeout=2, **options
    )
    return closed_after_the_test(introspector)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_an_active_token_yields_its_claims_with_each_secret_method(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint, clock: FakeClock, method: str
) -> None:
    endpoint.opaque_tokens["opaque-1"] = {
        "sub": "svc-a",
        "scope": "orders:read",
        "exp": clock.now + 60,
    }
    claims = _introspector(endpoint, clock, auth_method=method).introspect("opaque-1")
    assert claims is not None
    assert claims.subject == "svc-a"
    assert claims.scopes == frozenset({"orders:read"})
    assert endpoint.auth_methods_seen == [method]


def test_private_key_jwt_client_authentication_works(issuer: LocalIssuer, clock: FakeClock) -> None:
    client_key = generate_key("ES256")
    endpoint = issuer.enable_introspection(client_secret=None, client_jwk=client_key.public_jwk)
    endpoint.opaque_tokens["opaque-2"] = {"sub": "svc-b"}
    from joserfc.jwk import JWKRegistry

    private_jwk = dict(JWKRegistry.import_key(client_key.private_key, "EC").as_dict(private=True))
    private_jwk["alg"] = "ES256"
    introspector = _introspector(
        endpoint, clock, client_secret=None, private_key=private_jwk, auth_method="private_key_jwt"
    )
    claims = introspector.introspect("opaque-2")
    assert claims is not None
    assert claims.subject == "svc-b"
    assert endpoint.auth_methods_seen == ["private_key_jwt"]


def test_an_inactive_token_is_refused_and_that_answer_is_cached_briefly(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint, clock: FakeClock
) -> None:
    introspector = _introspector(endpoint, clock, inactive_ttl=5)
    for _ in range(3):
        with pytest.raises(TokenError) as caught:
            introspector.introspect("unknown-token")
        assert caught.value.reason == "inactive"
    assert issuer.requests["/introspect"] == 1
    clock.advance(6)
    with pytest.raises(TokenError):
        introspector.introspect("unknown-token")
    assert issuer.requests["/introspect"] == 2


def test_active_results_are_cached_but_never_past_the_tokens_exp(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint, clock: FakeClock
) -> None:
    endpoint.opaque_tokens["short"] = {"sub": "a", "exp": clock.now + 10}
    introspector = _introspector(endpoint, clock, max_cache_ttl=300)
    introspector.introspect("short")
    introspector.introspect("short")
    assert issuer.requests["/introspect"] == 1
    clock.advance(11)
    with pytest.raises(TokenError) as caught:
        introspector.introspect("short")
    assert caught.value.reason == "inactive"
    assert issuer.requests["/introspect"] == 2


def test_a_jwt_minted_by_the_issuer_is_active_until_revoked(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint, clock: FakeClock
) -> None:
    token = issuer.mint()
    assert _introspector(endpoint, clock).introspect(token) is not None
    endpoint.revoked.add(token)
    with pytest.raises(TokenError):
        _introspector(endpoint, clock).introspect(token)


def test_the_breaker_opens_after_failures_then_closes_after_recovery(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint, clock: FakeClock
) -> None:
    endpoint.opaque_tokens["t"] = {"sub": "a"}
    introspector = _introspector(endpoint, clock, failure_threshold=2, reset_after=30)
    issuer.fail_with(500)
    for _ in range(2):
        with pytest.raises(TokenError) as caught:
            introspector.introspect("t")
        assert caught.value.status_code == 503
    assert introspector.breaker_open
    calls = issuer.requests["/introspect"]
    with pytest.raises(TokenError):
        introspector.introspect("t")
    assert issuer.requests["/introspect"] == calls, "an open breaker must not call the endpoint"
    issuer.heal()
    clock.advance(40)
    assert introspector.introspect("t") is not None
    assert not introspector.breaker_open


def test_fail_open_lets_the_caller_decide_when_the_endpoint_is_down(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint, clock: FakeClock
) -> None:
    issuer.fail_with(503)
    assert _introspector(endpoint, clock, fail_open=True).introspect("t") is None


def test_a_hanging_endpoint_is_bounded_by_the_timeout(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint, clock: FakeClock
) -> None:
    issuer.hang(10)
    introspector = _introspector(endpoint, clock)
    introspector.timeout = 0.5
    started = time.monotonic()
    with pytest.raises(TokenError) as caught:
        introspector.introspect("t")
    assert caught.value.status_code == 503
    assert time.monotonic() - started < 3


@pytest.mark.anyio
async def test_the_async_driver_gives_the_same_answers(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint, clock: FakeClock
) -> None:
    endpoint.opaque_tokens["t"] = {"sub": "async"}
    introspector = _introspector(endpoint, clock)
    claims = await introspector.aintrospect("t")
    assert claims is not None
    assert claims.subject == "async"
    with pytest.raises(TokenError):
        await introspector.aintrospect("nope")
    await introspector.aclose()


@pytest.mark.parametrize(
    "cnf",
    [{"jwk": {"kty": "EC", "crv": "P-256"}}, {"jkt": ["x"]}, {"x5t#S256": 7}, "x", {}],
    ids=repr,
)
def test_an_introspected_binding_that_cannot_be_enforced_refuses_the_token(
    endpoint: IntrospectionEndpoint, clock: FakeClock, cnf: Any
) -> None:
    """RFC 8705 section 3.2 / RFC 9449 section 6.2: the ``cnf`` an endpoint reports counts."""
    endpoint.opaque_tokens["bound"] = {"sub": "svc", "exp": clock.now + 60, "cnf": cnf}
    with pytest.raises(TokenError) as caught:
        _introspector(endpoint, clock).introspect("bound")
    assert (caught.value.status_code, caught.value.error, caught.value.reason) == (
        401,
        "invalid_token",
        "cnf_unsupported",
    )


def test_introspected_scopes_split_on_sp_alone(
    endpoint: IntrospectionEndpoint, clock: FakeClock
) -> None:
    endpoint.opaque_tokens["tabbed"] = {"sub": "svc", "scope": "read\tadmin orders"}
    claims = _introspector(endpoint, clock).introspect("tabbed")
    assert claims is not None
    assert claims.scopes == frozenset({"read\tadmin", "orders"})
