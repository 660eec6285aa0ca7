"""An MCP server protected by jwkguard, end to end with the official ``mcp`` SDK.

A server with one tool (``MCPServer``), served over streamable HTTP by uvicorn on 127.0.0.1;
the SDK's own client initialises, lists and calls the tool with a valid token. Refusals keep
jwkguard's detail: no token (401 with ``resource_metadata``, the document served), wrong
audience, expired, missing scope (403 ``insufficient_scope`` with ``scope``), keys
unavailable (503).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.shared._httpx_utils import create_mcp_http_client
from websockets.exceptions import InvalidStatus

from jwkguard import Issuer, Validator
from jwkguard.errors import ConfigurationError
from jwkguard.testing import LocalIssuer
from jwkguard_fastapi.mcp import JWKGuardMCPGuard, JWKGuardTokenVerifier

from ..servers import ASGIServer

MCP_ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"},
    },
}


class LateApp:
    """An ASGI app set once the server's port, hence the resource identifier, is known."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def build_server(verifier: JWKGuardTokenVerifier) -> Any:
    server = MCPServer("tools", token_verifier=verifier, auth=verifier.auth_settings())

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    return verifier.protect(server.streamable_http_app(host="127.0.0.1"))


class Served:
    def __init__(self, url: str, resource: str, issuer: LocalIssuer) -> None:
        self.url = url
        self.resource = resource
        self.issuer = issuer

    def mint(self, **claims: Any) -> str:
        claims.setdefault("audience", self.resource)
        claims.setdefault("scopes", "tools:call")
        return self.issuer.mint(**claims)

    def initialize(self, token: str | None) -> httpx.Response:
        """POST the MCP ``initialize`` request, with ``token`` as a bearer token if given."""
        headers = dict(MCP_ACCEPT)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.post(f"{self.url}/mcp", json=INITIALIZE, headers=headers)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    late = LateApp()
    server = ASGIServer(late, lifespan="on")  # bound now: its port names the resource
    resource = f"{server.url}/mcp"
    with LocalIssuer() as issuer:
        # The validator's own audience is the issuer's default; the verifier still demands
        # that the token name the MCP server (RFC 8707).
        validator = Validator(
            issuers=[issuer.issuer_config(audiences=[issuer.audience, resource])],
            algorithms=["RS256"],
        )
        verifier = JWKGuardTokenVerifier(
            validator, resource=resource, required_scopes=["tools:call"]
        )
        late.app = build_server(verifier)
        with server:
            yield Served(server.url, resource, issuer)
        validator.close()


async def use_tools(url: str, token: str) -> tuple[list[str], Any]:
    http_client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http_client, Client(streamable_http_client(url, http_client=http_client)) as client:
        tools = await client.list_tools()
        result = await client.call_tool("add", {"a": 2, "b": 3})
    return [tool.name for tool in tools.tools], result


def test_the_sdk_client_initialises_lists_and_calls_the_tool_with_a_valid_token(
    served: Served,
) -> None:
    names, result = asyncio.run(use_tools(f"{served.url}/mcp", served.mint()))
    assert names == ["add"]
    assert result.is_error is False
    assert result.structured_content == {"result": 5}


def test_without_a_token_the_challenge_names_the_resource_metadata(served: Served) -> None:
    answer = served.initialize(None)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == (
        f'Bearer realm="mcp", resource_metadata="{served.url}'
        '/.well-known/oauth-protected-resource/mcp"'
    )
    assert answer.json()["reason"] == "missing_token"


def test_the_metadata_document_is_served(served: Served) -> None:
    answer = httpx.get(f"{served.url}/.well-known/oauth-protected-resource/mcp")
    assert answer.status_code == 200
    assert answer.json() == {
        "resource": served.resource,
        "authorization_servers": [served.issuer.url],
        "bearer_methods_supported": ["header"],
    }


def test_a_token_for_another_audience_is_refused_as_such(served: Served) -> None:
    # The validator accepts this audience; the MCP server does not (RFC 8707).
    answer = served.initialize(served.mint(audience=served.issuer.audience))
    assert answer.status_code == 401
    assert answer.json()["reason"] == "audience_mismatch"
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def test_an_expired_token_is_refused_as_expired(served: Served) -> None:
    answer = served.initialize(served.mint(now=time.time() - 3600, lifetime=60))
    assert answer.status_code == 401
    assert answer.json()["reason"] == "expired"


def test_a_token_without_the_scope_gets_403_insufficient_scope(served: Served) -> None:
    answer = served.initialize(served.mint(scopes="profile"))
    assert answer.status_code == 403
    challenge = answer.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="tools:call"' in challenge
    assert "resource_metadata=" in challenge


def test_the_sdk_client_fails_without_a_valid_token(served: Served) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - the SDK's own error for a 401
        asyncio.run(use_tools(f"{served.url}/mcp", served.mint(audience="https://other")))


def test_keys_unavailable_is_a_503_not_a_bad_token(served: Served) -> None:
    # A verifier whose issuer cannot be reached: an outage, told apart from a bad token.
    validator = Validator(
        issuers=[
            Issuer(
                served.issuer.url,
                audiences=[served.resource],
                jwks_uri="http://127.0.0.1:9/jwks",
                timeout=0.5,
            )
        ],
        algorithms=["RS256"],
    )
    verifier = JWKGuardTokenVerifier(validator, resource=served.resource)
    late = LateApp()
    late.app = build_server(verifier)
    with ASGIServer(late, lifespan="on") as server:
        answer = httpx.post(
            f"{server.url}/mcp",
            json=INITIALIZE,
            headers={**MCP_ACCEPT, "Authorization": f"Bearer {served.mint()}"},
        )
    validator.close()
    assert answer.status_code == 503
    assert "retry-after" in answer.headers
    assert answer.json()["reason"] == "keys_unavailable"


# -- the verifier alone, as the SDK's protocol ------------------------------------------------


def test_verify_token_gives_the_sdk_access_token(served: Served) -> None:
    verifier = JWKGuardTokenVerifier(
        Validator(
            issuers=[served.issuer.issuer_config(audiences=[served.resource])], algorithms=["RS256"]
        ),
        resource=served.resource,
    )
    token = served.mint(client_id="agent-7")
    access = asyncio.run(verifier.verify_token(token))
    assert isinstance(access, AccessToken)
    assert access.client_id == "agent-7"
    assert access.scopes == ["tools:call"]
    assert access.resource == served.resource
    assert access.subject == "user-123"
    assert access.claims is not None
    assert access.claims["iss"] == served.issuer.url
    verifier.validator.close()


def test_verify_token_refuses_a_token_for_another_resource_whatever_the_validator_accepts(
    served: Served,
) -> None:
    validator = Validator(
        issuers=[served.issuer.issuer_config(audiences=["https://other", served.resource])],
        algorithms=["RS256"],
    )
    verifier = JWKGuardTokenVerifier(validator, resource=served.resource)
    assert asyncio.run(verifier.verify_token(served.mint(audience="https://other"))) is None
    assert asyncio.run(
        verifier.verify_token(served.mint(audience=["https://other", served.resource]))
    )
    validator.close()


def test_the_verifier_needs_a_https_resource(served: Served) -> None:
    validator = Validator(issuers=[served.issuer.issuer_config()], algorithms=["RS256"])
    with pytest.raises(ConfigurationError):
        JWKGuardTokenVerifier(validator, resource="http://api.example.com/mcp")
    validator.close()


def test_a_websocket_handshake_to_the_mcp_endpoint_is_refused(served: Served) -> None:
    async def handshake() -> int:
        url = served.url.replace("http://", "ws://") + "/mcp"
        headers = {"Authorization": f"Bearer {served.mint()}"}
        try:
            async with websockets.connect(url, additional_headers=headers, open_timeout=10):
                return 101  # pragma: no cover - the guard must refuse
        except InvalidStatus as exc:
            return exc.response.status_code

    # Closed before it was accepted (1008): uvicorn answers the handshake with 403.
    assert asyncio.run(handshake()) == 403


def test_the_guard_passes_lifespan_and_other_paths_and_raises_for_unknown_scopes(
    served: Served,
) -> None:
    reached: list[tuple[str, str]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append((scope["type"], scope.get("path", "")))

    async def connect() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    sent: list[Any] = []

    async def record(message: Any) -> None:
        sent.append(message)

    validator = Validator(issuers=[served.issuer.issuer_config()], algorithms=["RS256"])
    guard = JWKGuardMCPGuard(
        inner, JWKGuardTokenVerifier(validator, resource="https://api.example.com/mcp")
    )
    asyncio.run(guard({"type": "lifespan"}, connect, record))
    asyncio.run(guard({"type": "websocket", "path": "/chat", "headers": []}, connect, record))
    assert reached == [("lifespan", ""), ("websocket", "/chat")]
    asyncio.run(guard({"type": "websocket", "path": "/mcp/", "headers": []}, connect, record))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "HTTP only"}]
    with pytest.raises(ValueError, match="cannot check an ASGI 'webtransport' scope"):
        asyncio.run(guard({"type": "webtransport", "path": "/mcp"}, connect, record))
    assert len(reached) == 2
    validator.close()
