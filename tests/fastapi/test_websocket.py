"""JWTBearer on WebSocket routes: header, opt-in subprotocol and query, 1008 on refusal."""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Security, WebSocket
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from jwkguard import Claims, Validator
from jwkguard.testing import LocalIssuer
from jwkguard_fastapi import JWTBearer

from ..helpers import bearer


def build_app(validator: Validator, **options: Any) -> FastAPI:
    auth = JWTBearer(validator, **options)
    app = FastAPI()

    @app.websocket("/ws")
    async def feed(
        websocket: WebSocket,
        claims: Annotated[Claims, Security(auth, scopes=["feed"])],
    ) -> None:
        await websocket.accept(subprotocol=auth.subprotocol(websocket))
        await websocket.send_json(
            {"sub": claims.subject, "state": websocket.state.claims is claims}
        )
        await websocket.close()

    return app


@pytest.fixture
def client(validator: Validator) -> Iterator[TestClient]:
    app = build_app(validator, websocket_subprotocol="bearer", allow_query="websocket")
    with TestClient(app) as test_client:
        yield test_client


def refused(client: TestClient, path: str = "/ws", **kwargs: Any) -> WebSocketDisconnect:
    with pytest.raises(WebSocketDisconnect) as caught, client.websocket_connect(path, **kwargs):
        pass
    return caught.value


def test_token_in_the_authorization_header_is_accepted(
    client: TestClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint(subject="ws-user", scopes=["feed"])
    with client.websocket_connect("/ws", headers=bearer(token)) as websocket:
        assert websocket.receive_json() == {"sub": "ws-user", "state": True}
        assert websocket.accepted_subprotocol is None


def test_token_in_the_subprotocol_is_accepted_and_the_marker_echoed(
    client: TestClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint(subject="browser", scopes=["feed"])
    with client.websocket_connect("/ws", subprotocols=["bearer", token]) as websocket:
        assert websocket.accepted_subprotocol == "bearer"
        assert websocket.receive_json()["sub"] == "browser"


def test_token_in_the_query_is_accepted_when_enabled(
    client: TestClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint(scopes=["feed"])
    with client.websocket_connect(f"/ws?access_token={token}") as websocket:
        assert websocket.receive_json()["sub"] == "user-123"


def test_no_token_closes_with_1008(client: TestClient) -> None:
    closed = refused(client)
    assert (closed.code, closed.reason) == (1008, "An access token is required")


def test_bad_token_closes_with_1008_and_a_reason(client: TestClient, issuer: LocalIssuer) -> None:
    token = issuer.mint(scopes=["feed"], now=1_000_000, lifetime=60)
    closed = refused(client, headers=bearer(token))
    assert (closed.code, closed.reason) == (1008, "The access token has expired")
    assert token not in closed.reason


def test_missing_scope_closes_with_1008(client: TestClient, issuer: LocalIssuer) -> None:
    closed = refused(client, headers=bearer(issuer.mint(scopes=["other"])))
    assert closed.code == 1008
    assert closed.reason == "The access token lacks a required scope"


def test_token_in_two_places_closes_with_1008(client: TestClient, issuer: LocalIssuer) -> None:
    token = issuer.mint(scopes=["feed"])
    closed = refused(client, headers=bearer(token), subprotocols=["bearer", token])
    assert closed.code == 1008
    assert closed.reason == "The access token was sent in more than one place"


def test_subprotocol_marker_without_token_closes_with_1008(client: TestClient) -> None:
    assert refused(client, subprotocols=["bearer"]).code == 1008


def test_subprotocol_and_query_are_refused_unless_enabled(
    validator: Validator, issuer: LocalIssuer
) -> None:
    token = issuer.mint(scopes=["feed"])
    with TestClient(build_app(validator)) as client:
        closed = refused(client, subprotocols=["bearer", token])
        assert (closed.code, closed.reason) == (1008, "An access token is required")
        closed = refused(client, f"/ws?access_token={token}")
        assert closed.reason == "Access tokens in the query string are not accepted"
