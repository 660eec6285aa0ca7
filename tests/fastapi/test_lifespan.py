"""The lifespan helper: keys fetched at start-up, HTTP clients closed at shutdown."""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Request, Security
from fastapi.testclient import TestClient

from jwkguard import Claims, KeysUnavailable, Validator
from jwkguard.testing import LocalIssuer
from jwkguard_fastapi import JWTBearer, install, lifespan

from ..helpers import bearer


class RecordingValidator(Validator):
    """A real validator that also records when it is closed."""

    closed = 0

    async def aclose(self) -> None:
        self.closed += 1
        await super().aclose()


def remote_validator(issuer: LocalIssuer, **options: Any) -> RecordingValidator:
    return RecordingValidator(issuers=[issuer.issuer_config(**options)], algorithms=["RS256"])


def build_app(validator: Validator, **options: Any) -> FastAPI:
    auth = JWTBearer(validator)
    app = FastAPI(lifespan=lifespan(validator, **options))
    install(app)

    @app.get("/me")
    async def me(request: Request, claims: Annotated[Claims, Security(auth)]) -> Any:
        return {"sub": claims.subject, "greeting": getattr(request.state, "greeting", None)}

    return app


def test_keys_are_fetched_at_start_up_before_any_request(local_issuer: LocalIssuer) -> None:
    validator = remote_validator(local_issuer)
    with TestClient(build_app(validator)) as client:
        assert local_issuer.requests["/jwks.json"] == 1
        assert local_issuer.requests["/.well-known/openid-configuration"] == 1
        assert client.get("/me", headers=bearer(local_issuer.mint())).status_code == 200
        assert local_issuer.requests["/jwks.json"] == 1


def test_without_the_lifespan_keys_wait_for_the_first_request(local_issuer: LocalIssuer) -> None:
    validator = remote_validator(local_issuer)
    app = FastAPI()
    auth = JWTBearer(validator)

    @app.get("/me")
    async def me(claims: Annotated[Claims, Security(auth)]) -> Any:
        return {}

    with TestClient(app) as client:
        assert local_issuer.requests["/jwks.json"] == 0
        assert client.get("/me", headers=bearer(local_issuer.mint())).status_code == 200
        assert local_issuer.requests["/jwks.json"] == 1
    validator.close()


def test_clients_are_closed_at_shutdown(local_issuer: LocalIssuer) -> None:
    validator = remote_validator(local_issuer)
    with TestClient(build_app(validator)):
        assert validator.closed == 0
    assert validator.closed == 1


def test_failed_warm_up_is_logged_and_keys_are_fetched_on_demand(
    local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    validator = remote_validator(local_issuer, timeout=2, cooldown=0)
    local_issuer.fail_with(503)
    with TestClient(build_app(validator)) as client:
        assert "key warm-up failed" in caplog.text
        outage = client.get("/me", headers=bearer(local_issuer.mint()))
        assert outage.status_code == 503
        assert outage.json()["error"] == "temporarily_unavailable"
        assert outage.headers["retry-after"].isdigit()
        local_issuer.heal()
        # The key source backs off after a failed fetch; the answer said for how long.
        deadline = time.monotonic() + int(outage.headers["retry-after"]) + 5
        while (status := client.get("/me", headers=bearer(local_issuer.mint())).status_code) == 503:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert status == 200
    assert validator.closed == 1


def test_require_keys_refuses_to_start_without_keys(local_issuer: LocalIssuer) -> None:
    validator = remote_validator(local_issuer, timeout=2)
    local_issuer.fail_with(503)
    with pytest.raises(KeysUnavailable), TestClient(build_app(validator, require_keys=True)):
        pass
    assert validator.closed == 1


def test_the_applications_own_lifespan_runs_inside_with_its_state(
    local_issuer: LocalIssuer,
) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def own(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        events.append(f"start, keys fetched: {local_issuer.requests['/jwks.json']}")
        yield {"greeting": "hello"}
        events.append("stop")

    validator = remote_validator(local_issuer)
    with TestClient(build_app(validator, app_lifespan=own)) as client:
        response = client.get("/me", headers=bearer(local_issuer.mint()))
        assert response.json() == {"sub": "user-123", "greeting": "hello"}
    assert events == ["start, keys fetched: 1", "stop"]
    assert validator.closed == 1
