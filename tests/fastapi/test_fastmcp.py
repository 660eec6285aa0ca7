"""A standalone FastMCP server with ``JWKGuardProvider``, end to end over streamable HTTP.

uvicorn on 127.0.0.1 serves ``FastMCP.http_app()``; FastMCP's own client lists and calls the
tool with a valid token; refusals keep jwkguard's detail and the RFC 9728 document is served.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastmcp import Client, FastMCP

from jwkguard import Validator
from jwkguard.errors import ConfigurationError
from jwkguard.testing import LocalIssuer
from jwkguard_fastapi.fastmcp import JWKGuardProvider

from ..servers import ASGIServer
from .test_mcp import LateApp, Served


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    late = LateApp()
    server = ASGIServer(late, lifespan="on")
    resource = f"{server.url}/mcp"
    with LocalIssuer() as issuer:
        validator = Validator(
            issuers=[issuer.issuer_config(audiences=[issuer.audience, resource])],
            algorithms=["RS256"],
        )
        auth = JWKGuardProvider(
            validator, resource=resource, required_scopes=["tools:call"], acr_values=["urn:mfa"]
        )
        mcp = FastMCP("tools", auth=auth)

        @mcp.tool
        def add(a: int, b: int) -> int:
            """Add two numbers."""
            return a + b

        late.app = mcp.http_app(path="/mcp")
        with server:
            yield Served(server.url, resource, issuer)
        validator.close()


async def use_tools(url: str, token: str) -> tuple[list[str], Any]:
    async with Client(url, auth=token) as client:
        tools = await client.list_tools()
        result = await client.call_tool("add", {"a": 20, "b": 22})
    return [tool.name for tool in tools], result


def test_the_fastmcp_client_lists_and_calls_the_tool_with_a_valid_token(served: Served) -> None:
    names, result = asyncio.run(use_tools(f"{served.url}/mcp", served.mint(acr="urn:mfa")))
    assert names == ["add"]
    assert result.data == 42


def test_without_a_token_the_challenge_names_the_resource_metadata(served: Served) -> None:
    answer = served.initialize(None)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].endswith(
        f'resource_metadata="{served.url}/.well-known/oauth-protected-resource/mcp"'
    )


def test_the_metadata_document_is_served(served: Served) -> None:
    answer = httpx.get(f"{served.url}/.well-known/oauth-protected-resource/mcp")
    assert answer.status_code == 200
    assert answer.json()["resource"] == served.resource
    assert answer.json()["authorization_servers"] == [served.issuer.url]


def test_wrong_audience_expired_and_missing_scope_stay_distinguishable(served: Served) -> None:
    wrong = served.initialize(served.mint(acr="urn:mfa", audience=served.issuer.audience))
    expired = served.initialize(served.mint(acr="urn:mfa", now=time.time() - 3600, lifetime=60))
    scope = served.initialize(served.mint(acr="urn:mfa", scopes="profile"))
    assert (wrong.status_code, wrong.json()["reason"]) == (401, "audience_mismatch")
    assert (expired.status_code, expired.json()["reason"]) == (401, "expired")
    assert (scope.status_code, scope.json()["error"]) == (403, "insufficient_scope")
    assert 'scope="tools:call"' in scope.headers["www-authenticate"]


def test_a_weak_login_gets_the_step_up_challenge(served: Served) -> None:
    answer = served.initialize(served.mint(acr="urn:pwd"))
    assert answer.status_code == 401
    assert 'error="insufficient_user_authentication"' in answer.headers["www-authenticate"]
    assert 'acr_values="urn:mfa"' in answer.headers["www-authenticate"]


def test_verify_token_gives_fastmcp_access_token_with_every_claim(served: Served) -> None:
    validator = Validator(
        issuers=[served.issuer.issuer_config(audiences=[served.resource])], algorithms=["RS256"]
    )
    provider = JWKGuardProvider(validator, resource=served.resource)
    access = asyncio.run(provider.verify_token(served.mint(tenant="acme")))
    assert access is not None
    assert access.claims["tenant"] == "acme"
    assert access.resource == served.resource
    assert asyncio.run(provider.verify_token(served.mint(audience="https://other"))) is None
    validator.close()


def test_an_endpoint_path_other_than_the_resource_path_fails_at_start_up(served: Served) -> None:
    validator = Validator(issuers=[served.issuer.issuer_config()], algorithms=["RS256"])
    mcp = FastMCP("tools", auth=JWKGuardProvider(validator, resource=served.resource))
    with pytest.raises(ConfigurationError, match="serve it at the resource's path"):
        mcp.http_app(path="/other")
    validator.close()
