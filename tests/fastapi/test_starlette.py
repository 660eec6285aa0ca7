"""Starlette without FastAPI: the authentication backend and the pure ASGI middleware."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from jwkguard import Validator
from jwkguard.testing import LocalIssuer, generate_key
from jwkguard_fastapi import JWKGuardBackend, JWKGuardMiddleware, TokenUser

from ..helpers import bearer
from ..sender.kit import UNENFORCEABLE_NAMES, assert_cnf_refusal, unenforceable_binding


async def whoami(request: Request) -> Response:
    user = request.user if "user" in request.scope else None
    claims = getattr(request.state, "claims", None)
    return JSONResponse(
        {
            "authenticated": user.is_authenticated if user is not None else None,
            "name": user.display_name if user is not None else None,
            "scopes": list(request.auth.scopes) if "auth" in request.scope else None,
            "claims_sub": claims.subject if claims is not None else None,
        }
    )


@requires("orders:read")
async def orders(request: Request) -> Response:
    assert isinstance(request.user, TokenUser)
    return JSONResponse({"sub": request.user.claims.subject})


async def public(request: Request) -> Response:
    return JSONResponse({"public": True, "claims": "claims" in request.scope.get("state", {})})


async def feed(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"sub": websocket.state.claims.subject})
    await websocket.close()


KEY = generate_key("ES256")

ROUTES = [
    Route("/whoami", whoami),
    Route("/orders", orders),
    Route("/health", public),
    Route("/public/info", public),
    Route("/upload", public, methods=["OPTIONS", "POST"]),
    WebSocketRoute("/ws", feed),
]


@pytest.fixture
def backend_client(validator: Validator) -> Iterator[TestClient]:
    backend = JWKGuardBackend(validator)
    middleware = [
        Middleware(AuthenticationMiddleware, backend=backend, on_error=JWKGuardBackend.on_error)
    ]
    with TestClient(Starlette(routes=ROUTES, middleware=middleware)) as client:
        yield client


@pytest.fixture
def middleware_client(validator: Validator) -> Iterator[TestClient]:
    middleware = [
        Middleware(
            JWKGuardMiddleware,
            validator=validator,
            exempt_paths=["/health"],
            exempt_prefixes=["/public/"],
            exempt_methods=["OPTIONS"],
            scopes=["api"],
        )
    ]
    with TestClient(Starlette(routes=ROUTES, middleware=middleware)) as client:
        yield client


def body(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    result: dict[str, Any] = response.json()
    return result


# -- AuthenticationBackend --------------------------------------------------------------------


def test_backend_sets_user_scopes_and_state(
    backend_client: TestClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint(subject="dana", scopes=["b", "a"])
    assert backend_client.get("/whoami", headers=bearer(token)).json() == {
        "authenticated": True,
        "name": "dana",
        "scopes": ["a", "b"],
        "claims_sub": "dana",
    }


def test_backend_leaves_requests_without_token_anonymous(backend_client: TestClient) -> None:
    assert backend_client.get("/whoami").json() == {
        "authenticated": False,
        "name": "",
        "scopes": [],
        "claims_sub": None,
    }


def test_backend_works_with_requires(backend_client: TestClient, issuer: LocalIssuer) -> None:
    granted = backend_client.get("/orders", headers=bearer(issuer.mint(scopes=["orders:read"])))
    assert granted.json() == {"sub": "user-123"}
    assert backend_client.get("/orders", headers=bearer(issuer.mint())).status_code == 403
    assert backend_client.get("/orders").status_code == 403


def test_backend_answers_a_bad_token_with_rfc6750(
    backend_client: TestClient, issuer: LocalIssuer
) -> None:
    response = backend_client.get("/whoami", headers=bearer(issuer.mint(audience="other")))
    assert response.status_code == 401
    assert body(response)["reason"] == "audience_mismatch"
    assert response.headers["www-authenticate"].startswith('Bearer realm="api", error="invalid_')
    malformed = backend_client.get("/whoami", headers={"Authorization": "Bearer a b"})
    assert malformed.status_code == 400
    assert body(malformed)["error"] == "invalid_request"


def test_backend_on_error_passes_foreign_errors_through() -> None:
    from starlette.authentication import AuthenticationError
    from starlette.requests import HTTPConnection

    response = JWKGuardBackend.on_error(
        HTTPConnection({"type": "http", "headers": []}), AuthenticationError("nope")
    )
    assert (response.status_code, response.body) == (400, b"nope")


# -- JWKGuardMiddleware -----------------------------------------------------------------------


def test_middleware_lets_a_valid_token_through_with_claims_on_state(
    middleware_client: TestClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint(subject="erin", scopes=["api"])
    response = middleware_client.get("/whoami", headers=bearer(token))
    assert response.json()["claims_sub"] == "erin"


def test_middleware_answers_401_without_token(middleware_client: TestClient) -> None:
    response = middleware_client.get("/whoami")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'
    assert body(response) == {
        "error": "unauthorized",
        "error_description": "An access token is required",
        "reason": "missing_token",
    }


def test_middleware_answers_403_for_a_missing_scope(
    middleware_client: TestClient, issuer: LocalIssuer
) -> None:
    response = middleware_client.get("/whoami", headers=bearer(issuer.mint(scopes=["other"])))
    assert response.status_code == 403
    assert response.headers["www-authenticate"].endswith('scope="api"')


def test_middleware_answers_401_for_a_bad_token(
    middleware_client: TestClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint(scopes=["api"], now=1_000_000, lifetime=60)
    response = middleware_client.get("/whoami", headers=bearer(token))
    assert response.status_code == 401
    assert body(response)["reason"] == "expired"


@pytest.mark.parametrize("name", UNENFORCEABLE_NAMES)
def test_backend_and_middleware_refuse_a_binding_they_cannot_enforce(
    backend_client: TestClient, middleware_client: TestClient, issuer: LocalIssuer, name: str
) -> None:
    """A ``cnf`` we cannot check is 401 ``cnf_unsupported``, never a plain bearer token."""
    token = issuer.mint(scopes=["api", "orders:read"], cnf=unenforceable_binding(KEY, name).cnf)
    for client in (backend_client, middleware_client):
        response = client.get("/whoami", headers=bearer(token))
        assert_cnf_refusal(response.status_code, response.headers, body(response))


@pytest.mark.parametrize("glue", ["\t", "\u00a0", "\n"])
def test_a_scope_glued_by_other_whitespace_is_not_granted(
    backend_client: TestClient, middleware_client: TestClient, issuer: LocalIssuer, glue: str
) -> None:
    """RFC 6749 section 3.3: only SP separates scopes."""
    spaced = issuer.mint(scope="orders:read api")
    assert backend_client.get("/orders", headers=bearer(spaced)).status_code == 200
    assert middleware_client.get("/whoami", headers=bearer(spaced)).status_code == 200
    token = issuer.mint(scope=f"orders:read{glue}api")
    assert backend_client.get("/orders", headers=bearer(token)).status_code == 403
    assert middleware_client.get("/whoami", headers=bearer(token)).status_code == 403


def test_middleware_serves_exempt_paths_prefixes_and_methods_without_token(
    middleware_client: TestClient,
) -> None:
    assert middleware_client.get("/health").json() == {"public": True, "claims": False}
    assert middleware_client.get("/public/info").status_code == 200
    assert middleware_client.options("/upload").status_code == 200
    assert middleware_client.post("/upload").status_code == 401
    assert middleware_client.get("/public").status_code == 401
    assert middleware_client.get("/healthz").status_code == 401


def test_middleware_protects_websockets_with_1008(
    middleware_client: TestClient, issuer: LocalIssuer
) -> None:
    with middleware_client.websocket_connect(
        "/ws", headers=bearer(issuer.mint(subject="ws", scopes=["api"]))
    ) as websocket:
        assert websocket.receive_json() == {"sub": "ws"}
    with pytest.raises(WebSocketDisconnect) as caught, middleware_client.websocket_connect("/ws"):
        pass
    assert caught.value.code == 1008
    with (
        pytest.raises(WebSocketDisconnect) as caught,
        middleware_client.websocket_connect("/ws", headers=bearer(issuer.mint())),
    ):
        pass
    assert (caught.value.code, caught.value.reason) == (
        1008,
        "The access token lacks a required scope",
    )


async def test_middleware_passes_lifespan_and_other_scopes_through(validator: Validator) -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = JWKGuardMiddleware(inner, validator)
    await middleware({"type": "lifespan"}, _never, _never)
    assert seen == ["lifespan"]


async def _never(*args: Any) -> Any:
    raise AssertionError("not called")


pytestmark = pytest.mark.anyio
