"""The example API: its routes through TestClient, and served by uvicorn over real HTTP."""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import InvalidStatus

from examples.fastapi_app import create_app, validator_from_env
from jwkguard import ConfigurationError, Validator
from jwkguard.testing import LocalIssuer

from ..helpers import bearer
from ..servers import stop_process

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(validator: Validator) -> Iterator[TestClient]:
    with TestClient(create_app(validator)) as test_client:
        yield test_client


def test_public_routes_need_no_token(client: TestClient) -> None:
    assert client.get("/").json() == {"service": "orders", "docs": "/docs"}
    assert client.get("/health").json() == {"status": "ok"}


def test_swagger_ui_is_served_from_the_installed_package(client: TestClient) -> None:
    """/docs names no CDN: its script, style and icon come from swagger-ui-py, here."""
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text
    assets = ["/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"]
    for asset in [*assets, "/docs/assets/favicon-32x32.png"]:
        assert asset in page.text
    for asset, kind in zip(assets, ["javascript", "text/css"], strict=True):
        response = client.get(asset)
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
    assert "oauth2" in client.get("/docs/oauth2-redirect").text
    assert "/docs/assets" not in client.get("/openapi.json").text


def test_catalog_is_optional_auth(client: TestClient, issuer: LocalIssuer) -> None:
    assert "greeting" not in client.get("/catalog").json()
    signed_in = client.get("/catalog", headers=bearer(issuer.mint(subject="fay")))
    assert signed_in.json()["greeting"] == "welcome back, fay"
    assert client.get("/catalog", headers=bearer("not.a.token")).status_code == 401


def test_me_needs_any_valid_token(client: TestClient, issuer: LocalIssuer) -> None:
    assert client.get("/me").status_code == 401
    response = client.get("/me", headers=bearer(issuer.mint(subject="gus", scopes=["b", "a"])))
    assert response.json() == {
        "subject": "gus",
        "scopes": ["a", "b"],
        "key_id": issuer.active_key.kid,
    }


def test_orders_need_read_and_write_scopes(client: TestClient, issuer: LocalIssuer) -> None:
    reader = bearer(issuer.mint(scopes=["orders:read"]))
    writer = bearer(issuer.mint(subject="hal", scopes=["orders:write"]))
    assert client.get("/orders", headers=reader).status_code == 200
    assert client.get("/orders", headers=writer).status_code == 403
    new = {"item": "grinder", "quantity": 1}
    refused = client.post("/orders", headers=reader, json=new)
    assert refused.status_code == 403
    assert refused.headers["www-authenticate"].endswith('scope="orders:write"')
    created = client.post("/orders", headers=writer, json=new)
    assert created.status_code == 201
    assert created.json() == {"id": 3, "owner": "hal", "item": "grinder", "quantity": 1}


def test_order_feed_over_websocket(client: TestClient, issuer: LocalIssuer) -> None:
    token = issuer.mint(subject="ivy", scopes=["orders:read"])
    with client.websocket_connect("/ws/orders", subprotocols=["bearer", token]) as websocket:
        assert websocket.accepted_subprotocol == "bearer"
        assert websocket.receive_json() == {"event": "hello", "subject": "ivy"}
        websocket.send_text("list")
        assert len(websocket.receive_json()["orders"]) == 2
    with client.websocket_connect(f"/ws/orders?access_token={token}") as websocket:
        assert websocket.receive_json()["subject"] == "ivy"
    with pytest.raises(WebSocketDisconnect) as caught, client.websocket_connect("/ws/orders"):
        pass
    assert caught.value.code == 1008


def test_websocket_closes_with_1013_when_keys_are_unavailable(local_issuer: LocalIssuer) -> None:
    validator = Validator(issuers=[local_issuer.issuer_config(timeout=2)], algorithms=["RS256"])
    local_issuer.fail_with(503)
    with TestClient(create_app(validator)) as client:
        token = local_issuer.mint(scopes=["orders:read"])
        with (
            pytest.raises(WebSocketDisconnect) as caught,
            client.websocket_connect("/ws/orders", headers=bearer(token)),
        ):
            pass
        assert caught.value.code == 1013
        response = client.get("/orders", headers=bearer(token))
        assert response.status_code == 503
        assert response.json()["reason"] == "keys_unavailable"
        assert int(response.headers["retry-after"]) >= 1


def test_validator_from_env_names_what_is_missing() -> None:
    with pytest.raises(ConfigurationError, match="JWKGUARD_AUDIENCES, JWKGUARD_ALGORITHMS"):
        validator_from_env({"JWKGUARD_ISSUER": "https://id.example.com/"})


def test_module_app_is_built_from_the_environment(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importlib.import_module("examples.fastapi_app")
    monkeypatch.setenv("JWKGUARD_ISSUER", issuer.url)
    monkeypatch.setenv("JWKGUARD_AUDIENCES", f"{issuer.audience}, https://other.example.com")
    monkeypatch.setenv("JWKGUARD_ALGORITHMS", "RS256,ES256")
    monkeypatch.setenv("JWKGUARD_JWKS_URI", issuer.jwks_uri)
    try:
        app = module.app
        assert isinstance(app, FastAPI)
        with TestClient(app) as client:
            token = issuer.mint(scopes=["orders:read"])
            assert client.get("/orders", headers=bearer(token)).status_code == 200
    finally:
        vars(module).pop("app", None)


# -- served by uvicorn over real HTTP ---------------------------------------------------------


@pytest.fixture(scope="module")
def served_example(issuer: LocalIssuer) -> Iterator[str]:
    """``uvicorn examples.fastapi_app:app`` in a subprocess, configured by environment."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "JWKGUARD_ISSUER": issuer.url,
        "JWKGUARD_AUDIENCES": issuer.audience,
        "JWKGUARD_ALGORITHMS": "RS256",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("JWKGUARD_JWKS_URI", None)  # discovery finds the JWK Set
    command = [sys.executable, "-m", "uvicorn", "examples.fastapi_app:app"]
    command += [
        "--fd",
        str(listener.fileno()),
        "--ws",
        "websockets-sansio",
        "--log-level",
        "warning",
    ]
    before = issuer.requests["/jwks.json"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, pass_fds=[listener.fileno()])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "uvicorn exited"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.1)
        # The lifespan fetched the keys during start-up, before the first request.
        assert issuer.requests["/jwks.json"] == before + 1
        yield url
    finally:
        stop_process(process)
        listener.close()


@pytest.mark.slow
def test_end_to_end_over_real_http(served_example: str, issuer: LocalIssuer) -> None:
    reader = bearer(issuer.mint(subject="real", scopes=["orders:read", "orders:write"]))
    fetches = issuer.requests["/jwks.json"]
    with httpx.Client(base_url=served_example, timeout=5) as http:
        missing = http.get("/orders")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="api"'
        assert missing.json()["reason"] == "missing_token"
        assert http.get("/orders", headers=reader).status_code == 200
        created = http.post("/orders", headers=reader, json={"item": "mug", "quantity": 2})
        assert created.status_code == 201
        assert created.json()["owner"] == "real"
        expired = http.get("/me", headers=bearer(issuer.mint(now=1_000_000, lifetime=60)))
        assert expired.status_code == 401
        assert expired.json()["reason"] == "expired"
        two = [("Authorization", reader["Authorization"])] * 2
        assert http.get("/me", headers=two).status_code == 400
        scope = http.get("/orders", headers=bearer(issuer.mint(scopes=["other"])))
        assert scope.status_code == 403
        for junk in ("a.b.c", "x" * 9000, "e30.e30.e30"):
            assert http.get("/orders", headers=bearer(junk)).status_code == 401
    # Every request was served from the keys fetched at start-up.
    assert issuer.requests["/jwks.json"] == fetches


@pytest.mark.slow
def test_end_to_end_websocket_over_real_http(served_example: str, issuer: LocalIssuer) -> None:
    ws_url = served_example.replace("http://", "ws://") + "/ws/orders"
    token = issuer.mint(subject="sock", scopes=["orders:read"])

    async def talk() -> tuple[Any, Any]:
        async with websockets.connect(
            ws_url,
            subprotocols=["bearer", token],
            open_timeout=5,  # type: ignore[list-item]
        ) as websocket:
            hello = await asyncio.wait_for(websocket.recv(), 5)
            return websocket.subprotocol, hello

    subprotocol, hello = asyncio.run(talk())
    assert subprotocol == "bearer"
    assert '"subject":"sock"' in hello

    async def refused() -> None:
        async with websockets.connect(ws_url, open_timeout=5):
            pass

    # Closed before the handshake completes: uvicorn answers the upgrade with 403.
    with pytest.raises(InvalidStatus) as caught:
        asyncio.run(refused())
    assert caught.value.response.status_code == 403
