"""``jwkguard serve`` routes with roles, any-of scopes and per-route issuers/audiences."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jwkguard._forward_auth import ForwardAuthApp, parse_config
from jwkguard.errors import ConfigurationError
from jwkguard.testing import LocalIssuer

from ..servers import ASGIServer


@pytest.fixture(scope="module")
def two() -> Iterator[tuple[LocalIssuer, LocalIssuer]]:
    with LocalIssuer(path="/corp") as corp, LocalIssuer(path="/partner") as partner:
        yield corp, partner


def document(two: tuple[LocalIssuer, LocalIssuer], routes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "server": {"gateway": "nginx"},
        "validator": {
            "algorithms": ["RS256"],
            "issuers": [
                {
                    "issuer": local.url,
                    "audiences": ["https://api", "https://admin"],
                    "jwks": local.jwks(),
                }
                for local in two
            ],
        },
        "routes": routes,
    }


@pytest.fixture(scope="module")
def client(two: tuple[LocalIssuer, LocalIssuer]) -> Iterator[str]:
    corp, _ = two
    routes = [
        {
            "path": "/admin",
            "roles": ["admin"],
            "issuers": [corp.url],
            "audiences": ["https://admin"],
        },
        {"path": "/reports", "any_roles": ["analyst", "admin"], "any_scopes": ["r", "all"]},
    ]
    app = ForwardAuthApp(parse_config(document(two, routes)))
    with ASGIServer(app, lifespan="on") as server:
        yield server.url


def ask(client: str, uri: str, token: str) -> tuple[int, str | None]:
    answer = httpx.get(
        client + "/auth",
        headers={
            "X-Original-URI": uri,
            "X-Original-Method": "GET",
            "X-Forwarded-Host": "api.example.com",
            "Authorization": f"Bearer {token}",
        },
    )
    reason = answer.json().get("reason") if answer.status_code != 200 else None
    return answer.status_code, reason


def test_a_route_narrows_issuer_audience_and_roles(
    client: str, two: tuple[LocalIssuer, LocalIssuer]
) -> None:
    corp, partner = two
    assert ask(client, "/admin/x", partner.mint(audience="https://admin", roles=["admin"])) == (
        401,
        "issuer_not_accepted",
    )
    assert ask(client, "/admin/x", corp.mint(audience="https://api", roles=["admin"])) == (
        401,
        "audience_not_accepted",
    )
    assert ask(client, "/admin/x", corp.mint(audience="https://admin")) == (
        403,
        "insufficient_role",
    )
    assert ask(client, "/admin/x", corp.mint(audience="https://admin", roles=["admin"]))[0] == 200


def test_a_route_takes_any_of_roles_and_scopes(
    client: str, two: tuple[LocalIssuer, LocalIssuer]
) -> None:
    _, partner = two
    token = partner.mint(audience="https://api", roles=["analyst"], scopes="r")
    assert ask(client, "/reports", token)[0] == 200
    assert ask(client, "/reports", partner.mint(audience="https://api", scopes="r")) == (
        403,
        "insufficient_role",
    )


def test_bad_route_options_fail_at_start_up(two: tuple[LocalIssuer, LocalIssuer]) -> None:
    with pytest.raises(ConfigurationError, match="roles"):
        parse_config(document(two, [{"path": "/x", "roles": "admin"}]))
    with pytest.raises(ConfigurationError, match="anonymous"):
        parse_config(document(two, [{"path": "/x", "anonymous": True, "roles": ["a"]}]))
    with pytest.raises(ConfigurationError, match="does not trust"):
        ForwardAuthApp(parse_config(document(two, [{"path": "/x", "issuers": ["https://evil"]}])))
