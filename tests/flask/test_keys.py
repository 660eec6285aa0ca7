"""Keys from the issuer's jwks_uri: warm-up, outages (503), rotation, as Flask sees them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from jwkguard import KeysUnavailable
from jwkguard.testing import LocalIssuer
from jwkguard_flask import JWKGuard, current_claims

from ..conftest import FakeClock
from ..helpers import bearer


@pytest.fixture
def own_issuer() -> Iterator[LocalIssuer]:
    """An issuer these tests may take down and rotate."""
    with LocalIssuer() as issuer:
        yield issuer


@pytest.fixture
def remote_app() -> Iterator[Callable[..., Flask]]:
    """Build apps whose keys come from the issuer's jwks_uri; close their HTTP clients after."""
    apps: list[Flask] = []

    def build(issuer: LocalIssuer, **config: Any) -> Flask:
        app = _remote_app(issuer, **config)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["jwkguard"].validator.close()


def _remote_app(issuer: LocalIssuer, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        JWKGUARD_ISSUERS=[
            {
                "issuer": issuer.url,
                "audiences": [issuer.audience],
                "jwks_uri": issuer.jwks_uri,
                "timeout": 2,
            }
        ],
        JWKGUARD_ALGORITHMS=[issuer.alg],
        **config,
    )
    guard = JWKGuard(app)

    @app.get("/me")
    @guard.require
    def me() -> dict[str, Any]:
        return {"sub": current_claims.subject, "kid": current_claims.key_id}

    return app


def test_keys_are_fetched_on_the_first_request_and_then_cached(
    own_issuer: LocalIssuer, remote_app: Callable[..., Flask]
) -> None:
    app = remote_app(own_issuer)
    assert own_issuer.requests["/jwks.json"] == 0
    client = app.test_client()
    for _ in range(3):
        assert client.get("/me", headers=bearer(own_issuer.mint())).status_code == 200
    assert own_issuer.requests["/jwks.json"] == 1


def test_warm_up_fetches_the_keys_in_init_app(
    own_issuer: LocalIssuer, remote_app: Callable[..., Flask]
) -> None:
    app = remote_app(own_issuer, JWKGUARD_WARM_UP=True)
    assert own_issuer.requests["/jwks.json"] == 1
    assert app.test_client().get("/me", headers=bearer(own_issuer.mint())).status_code == 200
    assert own_issuer.requests["/jwks.json"] == 1


def test_failed_warm_up_is_logged_and_keys_come_on_demand(
    own_issuer: LocalIssuer, remote_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    with own_issuer.outage(), caplog.at_level(logging.WARNING, logger="jwkguard.flask"):
        app = remote_app(own_issuer, JWKGUARD_WARM_UP=True, JWKGUARD_CLOCK=clock)
    assert "key warm-up failed" in caplog.text
    clock.advance(61)  # past the retry backoff that follows a failed fetch
    token = own_issuer.mint(now=clock.now)
    assert app.test_client().get("/me", headers=bearer(token)).status_code == 200


def test_require_keys_stops_init_app_when_no_keys_can_be_had(
    own_issuer: LocalIssuer, remote_app: Callable[..., Flask]
) -> None:
    with own_issuer.outage(), pytest.raises(KeysUnavailable):
        remote_app(own_issuer, JWKGUARD_REQUIRE_KEYS=True)


def test_no_keys_at_all_answers_503_with_retry_after(
    own_issuer: LocalIssuer, remote_app: Callable[..., Flask]
) -> None:
    app = remote_app(own_issuer)
    token = own_issuer.mint()
    with own_issuer.outage():
        answer = app.test_client().get("/me", headers=bearer(token))
    assert answer.status_code == 503
    assert answer.json is not None
    assert answer.json["error"] == "temporarily_unavailable"
    assert answer.json["reason"] == "keys_unavailable"
    assert int(answer.headers["Retry-After"]) > 0
    assert "WWW-Authenticate" not in answer.headers


def test_cached_keys_keep_serving_through_an_outage(
    own_issuer: LocalIssuer, remote_app: Callable[..., Flask]
) -> None:
    client = remote_app(own_issuer).test_client()
    assert client.get("/me", headers=bearer(own_issuer.mint())).status_code == 200
    with own_issuer.outage():
        assert client.get("/me", headers=bearer(own_issuer.mint())).status_code == 200


def test_rotated_key_is_picked_up_from_the_issuer(
    own_issuer: LocalIssuer, remote_app: Callable[..., Flask]
) -> None:
    client = remote_app(own_issuer).test_client()
    assert client.get("/me", headers=bearer(own_issuer.mint())).status_code == 200
    new_key = own_issuer.rotate()
    answer = client.get("/me", headers=bearer(own_issuer.mint()))
    assert answer.status_code == 200
    assert answer.json == {"sub": "user-123", "kid": new_key.kid}
    assert own_issuer.requests["/jwks.json"] == 2
