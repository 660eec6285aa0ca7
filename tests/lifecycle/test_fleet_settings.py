"""The fleet from settings (``jwkguard.fleet``), through the Flask adapter and on its own.

The pre-fork server is in ``test_gunicorn.py``; here: parsing, the wiring each adapter gets
(lifecycle, force_refresh, reuse alerts, DPoP replay ledger, metrics), in one process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from jwkguard import ConfigurationError, Event
from jwkguard.fleet import Fleet, RedisReplayLedger, RedisStore, build_fleet, build_fleet_settings
from jwkguard.lifecycle import LifecycleAdmin
from jwkguard.testing import LocalIssuer
from jwkguard_flask import JWKGuard, current_claims, metrics_view

from ..servers import RedisServer
from .conftest import wait_until


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as local:
        yield local


def test_unknown_fleet_keys_name_the_closest_known_one() -> None:
    with pytest.raises(ConfigurationError, match=r"ON_UNAVAILIBLE \(did you mean ON_UNAVAILABLE"):
        build_fleet_settings({"REDIS_URL": "redis://127.0.0.1:1/0", "ON_UNAVAILIBLE": "x"})
    with pytest.raises(ConfigurationError, match=r"MAX_ADRESSES \(did you mean MAX_ADDRESSES"):
        build_fleet_settings({"REDIS_URL": "redis://h/0", "REUSE": {"MAX_ADRESSES": 2}})
    with pytest.raises(ConfigurationError, match="ON_UNAVAILABLE must be"):
        build_fleet_settings({"REDIS_URL": "redis://h/0", "ON_UNAVAILABLE": "open"})
    with pytest.raises(ConfigurationError, match="REDIS_URL"):
        build_fleet_settings({"PREFIX": "x:"})
    with pytest.raises(ConfigurationError, match=r"heartbeat"):
        build_fleet_settings({"REDIS_URL": "redis://h/0", "HEARTBEAT": 0})


def test_a_fleet_is_built_without_io_and_with_the_settings_values() -> None:
    fleet = build_fleet(
        {
            "redis_url": "redis://127.0.0.1:1/0",  # nothing listens: no IO may happen here
            "prefix": "app:",
            "on_unavailable": "fail_closed",
            "reuse": {"max_addresses": 3, "window": 60},
        }
    )
    assert isinstance(fleet, Fleet)
    assert fleet.store._thread is None
    assert fleet.lifecycle.on_unavailable == "fail_closed"
    assert fleet.lifecycle.reuse is not None
    assert (fleet.lifecycle.reuse.max_addresses, fleet.lifecycle.reuse.window) == (3, 60)
    assert build_fleet(None) is None
    assert build_fleet({"redis_url": "redis://h/0", "reuse": False}).lifecycle.reuse is None  # type: ignore[union-attr]


def flask_app(issuer: LocalIssuer, redis: RedisServer, events: list[Event], **extra: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        JWKGUARD_ISSUERS=[{"issuer": issuer.url, "audiences": [issuer.audience]}],
        JWKGUARD_ALGORITHMS=["RS256"],
        JWKGUARD_FLEET={
            "REDIS_URL": redis.url,
            "PREFIX": f"settings-{uuid.uuid4().hex[:8]}:",
            "REUSE": {"MAX_ADDRESSES": 1},
        },
        JWKGUARD_METRICS=True,
        JWKGUARD_ON_EVENT=events.append,
        **extra,
    )
    guard = JWKGuard(app)

    @app.get("/me")
    @guard.require
    def me() -> dict[str, Any]:
        return {"sub": current_claims.subject}

    app.add_url_rule("/metrics", view_func=metrics_view)
    guard.protect(app)
    return app


def test_flask_fleet_revocation_force_refresh_reuse_and_metrics(
    issuer: LocalIssuer, redis_server: RedisServer
) -> None:
    """Settings alone give lifecycle checks, force_refresh, reuse alerts and /metrics."""
    events: list[Event] = []
    app = flask_app(issuer, redis_server, events)
    fleet = app.extensions["jwkguard"].fleet
    assert isinstance(fleet, Fleet)
    admin = LifecycleAdmin(RedisStore(redis_server.url, prefix=fleet.settings.prefix))
    client = app.test_client()
    try:
        token = issuer.mint(jti="t-1", subject="alice")
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.get("/me", headers=bearer).status_code == 200
        assert fleet.store.available  # started on the first request

        # Reuse watch: the same token from a second address emits token_reuse (never refuses).
        other = client.get("/me", headers=bearer, environ_base={"REMOTE_ADDR": "10.0.0.9"})
        assert other.status_code == 200
        assert [e.detail["address"] for e in events if e.kind == "token_reuse"] == ["10.0.0.9"]

        # force_refresh reaches this app's key source through the fleet's broadcast.
        admin.force_refresh(issuer.url, by="test", why="rotated")
        wait_until(lambda: any(e.kind == "refresh_requested" for e in events), timeout=2)

        admin.revoke_token("t-1", issuer=issuer.url, expires_at=time.time() + 600, by="t", why="t")
        wait_until(lambda: client.get("/me", headers=bearer).status_code == 401, timeout=1)

        page = client.get("/metrics")  # exempt from protect()
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        assert 'jwkguard_lifecycle_rejections_total{issuer="' in text
        assert 'kind="token_reuse"' in text
    finally:
        admin.store.close()  # type: ignore[attr-defined]
        fleet.close()
        app.extensions["jwkguard"].validator.close()


def test_flask_fleet_remembers_dpop_proofs_in_redis(
    issuer: LocalIssuer, redis_server: RedisServer
) -> None:
    app = flask_app(issuer, redis_server, [], JWKGUARD_DPOP=True)
    state = app.extensions["jwkguard"]
    try:
        dpop = state.sender.constraints.dpop
        assert dpop is not None
        assert isinstance(dpop.replay, RedisReplayLedger)
        assert dpop.replay.store is state.fleet.store
    finally:
        state.fleet.close()
        state.validator.close()


def test_flask_fleet_refuses_a_ready_validator_or_a_lifecycle_beside_it(
    issuer: LocalIssuer, redis_server: RedisServer
) -> None:
    app = Flask(__name__)
    app.config.update(
        JWKGUARD_ISSUERS=[{"issuer": issuer.url, "audiences": [issuer.audience]}],
        JWKGUARD_ALGORITHMS=["RS256"],
        JWKGUARD_FLEET={"REDIS_URL": redis_server.url},
        JWKGUARD_LIFECYCLE=object(),
    )
    with pytest.raises(ConfigurationError, match="not both"):
        JWKGuard(app)
    app.config["JWKGUARD_FLEEET"] = app.config.pop("JWKGUARD_FLEET")
    del app.config["JWKGUARD_LIFECYCLE"]
    with pytest.raises(ConfigurationError, match=r"JWKGUARD_FLEEET.*did you mean JWKGUARD_FLEET"):
        JWKGuard(app)
