"""The snippets of docs/sender-constrained.md run as written: the FastAPI and Flask apps, the
Django settings, the TOML table, and the DPoP client against a real app."""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jwkguard import Issuer, Validator
from jwkguard.sender import DPoPNonces, DPoPVerifier, build_sender_settings
from jwkguard.testing import LocalIssuer

from ..servers import ASGIServer

PAGE = Path(__file__).resolve().parents[2] / "docs" / "sender-constrained.md"
PLACEHOLDER = "https://id.example.com/"


def blocks(heading: str, language: str = "python") -> list[str]:
    """The code blocks in ``language`` of the section under ``heading``."""
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index(f"\n## {heading}\n") :]
    following = section.find("\n## ", 1)
    section = section if following == -1 else section[:following]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def run(source: str, issuer: LocalIssuer | None = None) -> dict[str, Any]:
    if issuer is not None:
        assert PLACEHOLDER in source
        source = source.replace(f'"{PLACEHOLDER}"', f'"{issuer.url}"')
    namespace: dict[str, Any] = {"__name__": "snippet"}
    exec(compile(source, str(PAGE), "exec"), namespace)  # noqa: S102
    return namespace


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as local:
        yield local


def client_namespace() -> dict[str, Any]:
    (source, _) = blocks("Clients")
    return run(source)


def test_the_fastapi_example_with_the_documented_dpop_client(issuer: LocalIssuer) -> None:
    (source,) = blocks("FastAPI")
    app_namespace = run(source, issuer)
    client_code = client_namespace()
    key = client_code["key"]
    token = issuer.mint(scopes=["orders:read", "orders:write"], cnf={"jkt": client_code["jkt"]})
    auth = client_code["DPoPAuth"](token, key)
    with (
        ASGIServer(app_namespace["app"]) as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        assert client.get("/orders", auth=auth).status_code == 200
        assert client.post("/orders", auth=auth).json() == {"by": "user-123"}
        plain = client.post("/orders", headers={"Authorization": f"Bearer {issuer.mint()}"})
        assert plain.status_code == 401
        assert plain.json()["reason"] == "dpop_required"
        challenge = client.post("/refunds").headers["www-authenticate"]
        assert challenge == 'DPoP realm="api", algs="ES256 EdDSA"'
    app_namespace["validator"].close()
    app_namespace["introspector"].close()


def test_the_documented_client_retries_once_with_the_servers_nonce(issuer: LocalIssuer) -> None:
    from fastapi import FastAPI, Security

    from jwkguard import Claims
    from jwkguard_fastapi import JWTBearer, install

    nonces = DPoPNonces(b"0123456789abcdef0123456789abcdef")
    validator = Validator(
        issuers=[Issuer(issuer.url, audiences=[issuer.audience], jwks=issuer.jwks())],
        algorithms=["RS256"],
    )
    auth = JWTBearer(validator, dpop=DPoPVerifier(nonces=nonces), require_dpop=True)
    app = FastAPI()
    install(app, validator)

    @app.get("/orders")
    async def orders(claims: Claims = Security(auth)) -> dict[str, str]:  # noqa: B008
        return {"for": claims.subject or ""}

    client_code = client_namespace()
    token = issuer.mint(cnf={"jkt": client_code["jkt"]})
    dpop = client_code["DPoPAuth"](token, client_code["key"])
    with ASGIServer(app) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        response = client.get("/orders", auth=dpop)
        assert response.status_code == 200, response.text
        assert dpop.nonce == nonces.current(time.time())


def test_the_flask_example(issuer: LocalIssuer) -> None:
    (source,) = blocks("Flask")
    namespace = run(source, issuer)
    client_code = client_namespace()
    token = issuer.mint(cnf={"jkt": client_code["jkt"]}, scopes=["orders:write"])
    app = namespace["app"]
    client = app.test_client()
    proof = client_code["DPoPAuth"](token, client_code["key"])
    request = httpx.Request("POST", "http://localhost/orders")
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof.proof(request)}
    assert client.post("/orders", headers=headers).get_json() == {"by": "user-123"}
    refused = client.post("/refunds", headers={"Authorization": f"Bearer {issuer.mint()}"})
    assert refused.get_json()["reason"] == "certificate_binding_required"
    state = app.extensions["jwkguard"]
    state.sender.introspector.close()
    state.validator.close()


def test_the_django_settings_and_the_toml_table_are_accepted() -> None:
    settings_source, views_source = blocks("Django")
    views = run(views_source)
    assert views["create_order"].jwkguard_policy.dpop
    assert views["refund"].jwkguard_policy.introspect
    namespace = run(settings_source)
    settings = dict(namespace["JWKGUARD"])
    settings["DPOP"] = {**settings["DPOP"], "REPLAY": None}  # the dotted path is the reader's
    built = build_sender_settings(settings)
    assert built.constraints.dpop is not None
    assert built.introspector is not None
    built.introspector.close()
    (table,) = blocks("jwkguard serve", "toml")
    document = tomllib.loads(table)
    from jwkguard._forward_auth import parse_config

    config = parse_config(
        {
            "validator": {
                "algorithms": ["RS256"],
                "issuers": [{"issuer": PLACEHOLDER, "audiences": ["https://api"]}],
            },
            **document,
        }
    )
    assert config.routes.routes[0].dpop
