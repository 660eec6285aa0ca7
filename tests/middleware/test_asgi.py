"""``jwkguard.asgi.JWKGuardMiddleware`` over real HTTP, in front of frameworks with no adapter.

Litestar, Quart and a raw ASGI callable, each under uvicorn and hypercorn: the same RFC 6750
answers as every adapter, exemptions only in canonical spelling, lifespan passed through,
WebSocket handshakes without a valid token refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from jwkguard import Validator
from jwkguard.asgi import JWKGuardMiddleware

from ..helpers import raw_request
from .apps import ASGI_APPS, STRETCHED_EXEMPTIONS, raw_asgi_app
from .conftest import serve_asgi

COMBINATIONS = [(name, server) for name in ASGI_APPS for server in ("uvicorn", "hypercorn")]


@pytest.fixture(scope="module", params=COMBINATIONS, ids=[f"{a}-{s}" for a, s in COMBINATIONS])
def base_url(request: pytest.FixtureRequest, validator: Validator) -> Iterator[str]:
    name, server = request.param
    with serve_asgi(server, ASGI_APPS[name](validator)) as running:
        yield running.url


def test_a_valid_token_reaches_the_app_with_its_claims(base_url: str, mint: Any) -> None:
    answer = httpx.get(f"{base_url}/whoami", headers={"Authorization": f"Bearer {mint()}"})
    assert answer.status_code == 200
    assert answer.json() == {"subject": "user-123"}


def test_no_token_is_the_rfc6750_challenge(base_url: str) -> None:
    answer = httpx.get(f"{base_url}/whoami")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="api"'
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json()["reason"] == "missing_token"


def test_a_bad_token_is_invalid_token(base_url: str, mint: Any) -> None:
    forged = mint()[:-4] + "AAAA"
    answer = httpx.get(f"{base_url}/whoami", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def test_two_authorization_headers_are_a_400(base_url: str, mint: Any) -> None:
    token = mint()
    answer = httpx.get(
        f"{base_url}/whoami",
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    )
    assert answer.status_code == 400
    assert answer.json()["reason"] == "multiple_authorization_headers"


@pytest.mark.parametrize("byte", ["\xa0", "\x85"], ids=["nbsp", "nel"])
def test_a_token_with_a_trailing_latin1_space_is_malformed(
    base_url: str, mint: Any, byte: str
) -> None:
    """obs-text after the token reaches the app: it is part of the value, not whitespace."""
    headers = {"Authorization": f"Bearer {mint()}{byte}"}
    assert raw_request(base_url, "GET", "/whoami", headers).status == 400


def test_a_query_token_is_refused_by_default(base_url: str, mint: Any) -> None:
    answer = httpx.get(f"{base_url}/whoami", params={"access_token": mint()})
    assert answer.status_code == 400
    assert answer.json()["reason"] == "token_in_query"


def test_exempt_paths_are_exact_or_subtrees(base_url: str) -> None:
    assert httpx.get(f"{base_url}/health").status_code == 200
    assert httpx.get(f"{base_url}/health/live").status_code == 200
    assert httpx.get(f"{base_url}/healthz").status_code == 401


@pytest.mark.parametrize("target", STRETCHED_EXEMPTIONS)
def test_an_exemption_cannot_be_stretched_to_a_protected_path(base_url: str, target: str) -> None:
    assert raw_request(base_url, "GET", target).status == 401


def test_a_cors_preflight_reaches_the_app(base_url: str) -> None:
    answer = httpx.options(
        f"{base_url}/whoami",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "GET",
        },
    )
    assert answer.status_code in (200, 204)


def test_lifespan_passes_through_to_the_app(base_url: str, mint: Any) -> None:
    answer = httpx.get(f"{base_url}/started", headers={"Authorization": f"Bearer {mint()}"})
    assert answer.json() == {"started": True}


def _ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/ws"


def _handshake(url: str, headers: Any) -> int:
    """The HTTP status of a WebSocket handshake (200 once accepted), or the close code."""

    async def talk() -> int:
        try:
            async with websockets.connect(url, additional_headers=headers) as socket:
                await asyncio.wait_for(socket.recv(), 10)
        except InvalidStatus as exc:
            return exc.response.status_code
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else 0
        return 200

    return asyncio.run(talk())


def test_a_websocket_with_a_valid_token_is_accepted(base_url: str, mint: Any) -> None:
    async def talk() -> str:
        async with websockets.connect(
            _ws_url(base_url), additional_headers={"Authorization": f"Bearer {mint()}"}
        ) as socket:
            return str(await asyncio.wait_for(socket.recv(), 10))

    assert asyncio.run(talk()) == "user-123"


@pytest.mark.parametrize("authorization", [None, "Bearer not.a.token"])
def test_a_websocket_without_a_valid_token_is_refused(
    base_url: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    # Closed before it was accepted: the server answers the handshake with HTTP 403.
    assert _handshake(_ws_url(base_url), headers) == 403


@pytest.mark.parametrize("case", ["two-headers", "query", "header-and-query", "basic"])
def test_a_websocket_handshake_follows_the_http_token_rules(
    base_url: str, mint: Any, case: str
) -> None:
    """Two headers, a query token (not accepted by default), or another scheme: a handshake
    is refused like an HTTP request, even when one of the tokens is valid."""
    token = mint()
    url = _ws_url(base_url)
    headers: list[tuple[str, str]] = []
    if case in ("two-headers", "header-and-query"):
        headers.append(("Authorization", f"Bearer {token}"))
    if case == "two-headers":
        headers.append(("Authorization", f"Bearer {token}"))
    if case in ("query", "header-and-query"):
        url += f"?access_token={token}"
    if case == "basic":
        headers.append(("Authorization", "Basic dXNlcjpwYXNz"))
    assert _handshake(url, headers) == 403


# -- options, on the raw app ----------------------------------------------------------------


@pytest.fixture(scope="module")
def optional_url(validator: Validator) -> Iterator[str]:
    with serve_asgi("uvicorn", raw_asgi_app(validator, optional=True)) as running:
        yield running.url


def test_optional_lets_anonymous_requests_through_but_refuses_bad_tokens(
    optional_url: str,
) -> None:
    assert httpx.get(f"{optional_url}/whoami").json() == {"subject": "anonymous"}
    answer = httpx.get(f"{optional_url}/whoami", headers={"Authorization": "Bearer x.y.z"})
    assert answer.status_code == 401


def test_scopes_are_a_403_with_the_scope_named(validator: Validator, mint: Any) -> None:
    with serve_asgi("uvicorn", raw_asgi_app(validator, scopes=["orders:read"])) as running:
        weak = httpx.get(
            f"{running.url}/whoami", headers={"Authorization": f"Bearer {mint(scopes='a')}"}
        )
        strong = httpx.get(
            f"{running.url}/whoami",
            headers={"Authorization": f"Bearer {mint(scopes='orders:read')}"},
        )
    assert weak.status_code == 403
    assert 'scope="orders:read"' in weak.headers["www-authenticate"]
    assert strong.status_code == 200


def test_the_middleware_imports_no_web_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, jwkguard.asgi, jwkguard.wsgi; "
        "bad = [m for m in ('starlette', 'fastapi', 'django', 'flask', 'werkzeug') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_challenge_naming_non_ascii_scopes_is_still_sent(validator: Validator, mint: Any) -> None:
    """RFC 6750 section 3: challenge values are printable ASCII. A scope or realm outside it
    (configured, never from the request) is left out of the header, never a 500."""
    app = raw_asgi_app(validator, scopes=["données:lire"], realm="Zürich 東京")
    with serve_asgi("uvicorn", app) as running:
        answer = httpx.get(f"{running.url}/whoami", headers={"Authorization": f"Bearer {mint()}"})
        assert answer.status_code == 403
        assert answer.headers["www-authenticate"].startswith('Bearer realm="Zrich ", error=')
        assert 'scope="donnes:lire"' in answer.headers["www-authenticate"]
        assert answer.json()["error"] == "insufficient_scope"
        assert httpx.get(f"{running.url}/whoami").status_code == 401


def test_head_gets_the_refusal_without_a_body(validator: Validator) -> None:
    """HTTP forbids a body in an answer to HEAD: the middleware sends none, rather than count
    on every ASGI server to drop it (one that forwarded it would desync a kept-alive
    connection), as the WSGI middleware and the metadata document already do."""
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not run")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "HEAD",
        "path": "/whoami",
        "headers": [],
        "query_string": b"",
    }
    asyncio.run(JWKGuardMiddleware(app, validator)(scope, receive, send))
    start, body = sent
    assert start["status"] == 401
    assert (b"www-authenticate", b'Bearer realm="api"') in start["headers"]
    assert body == {"type": "http.response.body", "body": b""}


def test_a_bad_configuration_fails_at_construction(validator: Validator) -> None:
    from jwkguard.errors import ConfigurationError

    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    with pytest.raises(ConfigurationError):
        JWKGuardMiddleware(app, validator, exempt_paths=["health"])
    with pytest.raises(ConfigurationError):
        JWKGuardMiddleware(app, validator, exempt_paths=["/"])
    with pytest.raises(ConfigurationError):
        JWKGuardMiddleware(app, validator, exempt_paths=["/api*"])
    with pytest.raises(ConfigurationError):
        JWKGuardMiddleware(app, validator, scopes="orders:read")
    with pytest.raises(ConfigurationError):
        JWKGuardMiddleware(app, validator, introspect=True)


def test_a_scope_type_it_cannot_check_is_refused_never_passed_on(validator: Validator) -> None:
    reached: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["type"])

    async def nothing() -> dict[str, Any]:
        raise AssertionError("nothing may be read")  # pragma: no cover

    async def discard(message: Any) -> None:
        raise AssertionError("nothing may be sent")  # pragma: no cover

    guarded = JWKGuardMiddleware(inner, validator)
    scope = {"type": "webtransport", "path": "/whoami", "headers": []}
    with pytest.raises(ValueError, match="cannot check an ASGI 'webtransport' scope"):
        asyncio.run(guarded(scope, nothing, discard))
    assert reached == []
