"""``jwkguard serve`` with sender-constrained tokens: DPoP proofs checked against the original
request the gateway describes, certificates from the gateway's header, introspection per route;
and end to end behind nginx terminating mutual TLS."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route as StarletteRoute

from jwkguard import ConfigurationError
from jwkguard._forward_auth import ForwardAuthApp, parse_config
from jwkguard.fleet import RedisReplayLedger
from jwkguard.sender import DPoPNonces, certificate_thumbprint
from jwkguard.testing import (
    CertificateAuthority,
    IntrospectionEndpoint,
    LocalIssuer,
    SigningKey,
    generate_key,
    make_dpop_proof,
)

from ..conftest import require_binary
from ..servers import ASGIServer, Nginx, RedisServer, free_port, stop_process
from .kit import (
    BROKEN_PROOFS,
    UNENFORCEABLE_NAMES,
    BrokenProof,
    TLSFiles,
    assert_cnf_refusal,
    assert_dpop_refusal,
    dpop_challenge,
    unenforceable_binding,
)

HOST = "api.example.com"
GATEWAY = "10.0.0.5"
STRANGER = "192.0.2.9"
NONCE_SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as local:
        yield local


@pytest.fixture(scope="module")
def proof_key() -> SigningKey:
    return generate_key("ES256")


def document(issuer: LocalIssuer, sender: dict[str, Any] | None = None) -> dict[str, Any]:
    chosen = {"dpop": True} if sender is None else sender
    return {
        # The stranger is a trusted peer too, so that the certificate header, trusted only
        # from GATEWAY, is what refuses it.
        "server": {
            "audit": False,
            "metrics": False,
            "gateway": "nginx",
            "trusted_proxies": [GATEWAY, STRANGER],
        },
        "validator": {
            "algorithms": ["RS256"],
            "issuers": [
                {"issuer": issuer.url, "audiences": [issuer.audience], "jwks": issuer.jwks()}
            ],
        },
        "routes": [
            {"path": "/orders"},
            {"path": "/payments", "dpop": True},
            {"path": "/vault", "certificate": True},
            {"path": "/public", "anonymous": True},
            *([{"path": "/transfer", "introspect": True}] if "introspection" in chosen else []),
        ],
        "sender": chosen,
    }


def gateway(app: ForwardAuthApp, peer: str = GATEWAY) -> httpx.AsyncClient:
    """A client that reaches the app from ``peer``, as the gateway would."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(peer, 40000)), base_url="http://auth"
    )


async def ask(
    client: httpx.AsyncClient,
    uri: str,
    token: str | None = None,
    *,
    scheme: str = "DPoP",
    proof: str | None = None,
    method: str = "GET",
    **extra: str,
) -> httpx.Response:
    headers = {
        "X-Original-URI": uri,
        "X-Original-Method": method,
        "X-Forwarded-Host": HOST,
        "X-Forwarded-Proto": "https",
        **{name.replace("_", "-"): value for name, value in extra.items()},
    }
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    if proof is not None:
        headers["DPoP"] = proof
    return await client.get("/auth", headers=headers)


def bound(issuer: LocalIssuer, key: SigningKey) -> str:
    return issuer.mint(cnf={"jkt": key.thumbprint})


def proof_for(key: SigningKey, token: str, uri: str, method: str = "GET") -> str:
    return make_dpop_proof(key, method=method, url=f"https://{HOST}{uri}", access_token=token)


def check(response: httpx.Response, reason: str, error: str = "invalid_dpop_proof") -> None:
    assert_dpop_refusal(
        response.status_code, response.headers, response.json(), reason, error=error
    )


@pytest.mark.anyio
async def test_a_dpop_request_is_checked_against_the_original_method_and_uri(
    issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    app = ForwardAuthApp(parse_config(document(issuer)))
    token = bound(issuer, proof_key)
    async with gateway(app) as client:
        proof = proof_for(proof_key, token, "/orders/7?x=1", "DELETE")
        ok = await ask(client, "/orders/7?x=1", token, proof=proof, method="DELETE")
        assert ok.status_code == 200, ok.text
        assert ok.headers["X-Auth-Subject"] == "user-123"
        check(
            await ask(client, "/orders/7?x=1", token, proof=proof, method="DELETE"), "dpop_replayed"
        )
        plain = await ask(client, "/orders/7", token, scheme="Bearer")
        check(plain, "dpop_required")
        http = await ask(
            client,
            "/orders/8",
            token,
            proof=proof_for(proof_key, token, "/orders/8"),
            X_Forwarded_Proto="http",
        )
        check(http, "dpop_proof_invalid")


@pytest.mark.anyio
@pytest.mark.parametrize("case", BROKEN_PROOFS, ids=lambda case: case.name)
async def test_a_broken_proof_is_refused_like_in_every_adapter(
    issuer: LocalIssuer, proof_key: SigningKey, case: BrokenProof
) -> None:
    app = ForwardAuthApp(parse_config(document(issuer)))
    token = bound(issuer, proof_key)
    proof = case.make(proof_key, method="GET", url=f"https://{HOST}/orders", token=token)
    async with gateway(app) as client:
        check(await ask(client, "/orders", token, proof=proof), case.reason)


@pytest.mark.anyio
@pytest.mark.parametrize("name", UNENFORCEABLE_NAMES)
async def test_a_binding_that_cannot_be_enforced_is_refused_not_read_as_bearer(
    issuer: LocalIssuer, proof_key: SigningKey, name: str
) -> None:
    """A ``cnf`` we cannot check is 401 ``cnf_unsupported``, with or without a valid proof."""
    case = unenforceable_binding(proof_key, name)
    token = issuer.mint(cnf=case.cnf)
    app = ForwardAuthApp(parse_config(document(issuer)))
    async with gateway(app) as client:
        for uri in ("/orders", "/payments", "/vault"):
            proof = proof_for(proof_key, token, uri)
            for scheme, sent in (("Bearer", None), ("DPoP", proof)):
                response = await ask(client, uri, token, scheme=scheme, proof=sent)
                assert_cnf_refusal(response.status_code, response.headers, response.json())


@pytest.mark.anyio
async def test_a_route_that_demands_dpop_challenges_with_dpop(
    issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    app = ForwardAuthApp(parse_config(document(issuer)))
    async with gateway(app) as client:
        missing = await ask(client, "/payments")
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == dpop_challenge()
        check(await ask(client, "/payments", issuer.mint(), scheme="Bearer"), "dpop_required")
        assert (await ask(client, "/orders", issuer.mint(), scheme="Bearer")).status_code == 200
        token = bound(issuer, proof_key)
        ok = await ask(client, "/payments", token, proof=proof_for(proof_key, token, "/payments"))
        assert ok.status_code == 200


@pytest.mark.anyio
async def test_nonces_come_back_in_the_dpop_nonce_header(
    issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    config = parse_config(document(issuer, {"dpop": {"nonce_secret": NONCE_SECRET}}))
    app = ForwardAuthApp(config)
    token = bound(issuer, proof_key)
    async with gateway(app) as client:
        first = await ask(client, "/orders", token, proof=proof_for(proof_key, token, "/orders"))
        check(first, "dpop_nonce_required", error="use_dpop_nonce")
        nonce = first.headers["DPoP-Nonce"]
        assert nonce == DPoPNonces(NONCE_SECRET.encode()).current(time.time())
        proof = make_dpop_proof(
            proof_key, method="GET", url=f"https://{HOST}/orders", access_token=token, nonce=nonce
        )
        assert (await ask(client, "/orders", token, proof=proof)).status_code == 200


@pytest.mark.anyio
async def test_a_certificate_counts_only_from_the_trusted_gateway(issuer: LocalIssuer) -> None:
    authority = CertificateAuthority()
    mine, other = authority.issue("client-a"), authority.issue("client-b")
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(mine.der)})
    sender = {"dpop": True, "client_cert_header": "X-SSL-Client-Cert", "trusted_proxies": [GATEWAY]}
    app = ForwardAuthApp(parse_config(document(issuer, sender)))
    header = {"X_SSL_Client_Cert": quote(mine.certificate_pem.decode())}
    async with gateway(app) as client:
        ok = await ask(client, "/orders", token, scheme="Bearer", **header)
        assert ok.status_code == 200, ok.text
        wrong = await ask(
            client,
            "/orders",
            token,
            scheme="Bearer",
            X_SSL_Client_Cert=quote(other.certificate_pem.decode()),
        )
        assert wrong.json()["reason"] == "certificate_mismatch"
        unbound = await ask(client, "/vault", issuer.mint(), scheme="Bearer", **header)
        assert unbound.json()["reason"] == "certificate_binding_required"
    async with gateway(app, peer=STRANGER) as stranger:
        forged = await ask(stranger, "/orders", token, scheme="Bearer", **header)
        assert forged.status_code == 401
        assert forged.json()["reason"] == "certificate_missing"


@pytest.mark.anyio
async def test_a_route_marked_introspect_asks_the_authorization_server(
    issuer: LocalIssuer,
) -> None:
    endpoint: IntrospectionEndpoint = issuer.enable_introspection()
    sender = {
        "dpop": True,
        "introspection": {
            "endpoint": endpoint.url,
            "client_id": endpoint.client_id,
            "client_secret": endpoint.client_secret,
            "timeout": 2,
            "inactive_ttl": 0.001,
            "max_cache_ttl": 0.001,
        },
    }
    app = ForwardAuthApp(parse_config(document(issuer, sender)))
    token = issuer.mint()
    try:
        async with gateway(app) as client:
            before = issuer.requests["/introspect"]
            assert (await ask(client, "/transfer", token, scheme="Bearer")).status_code == 200
            assert (await ask(client, "/orders", token, scheme="Bearer")).status_code == 200
            assert issuer.requests["/introspect"] == before + 1
            endpoint.revoked.add(token)
            await anyio.sleep(0.01)
            revoked = await ask(client, "/transfer", token, scheme="Bearer")
            assert revoked.status_code == 401
            assert revoked.json()["reason"] == "inactive"
            issuer.fail_with(500, paths={"/introspect"})
            down = await ask(client, "/transfer", issuer.mint(), scheme="Bearer")
            assert down.status_code == 503
            assert down.headers["Retry-After"]
    finally:
        issuer.heal()
        assert app.sender.introspector is not None
        await app.sender.introspector.aclose()


@pytest.mark.parametrize(
    ("sender", "routes"),
    [
        ({"dpop": "yes"}, None),
        ({"dpop": True, "extra": 1}, None),
        ({"client_cert_header": "X-SSL-Client-Cert"}, None),
        ({}, [{"path": "/x", "dpop": True}]),
        ({}, [{"path": "/x", "introspect": True}]),
        ({"dpop": True}, [{"path": "/x", "dpop": "yes"}]),
        ({"dpop": True}, [{"path": "/x", "anonymous": True, "dpop": True}]),
    ],
)
def test_bad_sender_configuration_fails_at_start(
    issuer: LocalIssuer, sender: dict[str, Any], routes: list[dict[str, Any]] | None
) -> None:
    config = document(issuer, sender)
    if routes is not None:
        config["routes"] = routes
    with pytest.raises(ConfigurationError):
        parse_config(config)


# -- end to end: nginx terminating mutual TLS in front of `jwkguard serve` ------------------


def _echo_app() -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"subject": request.headers.get("x-auth-subject")})

    return Starlette(routes=[StarletteRoute("/{path:path}", echo, methods=["GET", "POST"])])


@pytest.fixture(scope="module")
def stack(
    issuer: LocalIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, TLSFiles]]:
    """nginx (mTLS, auth_request) -> `jwkguard serve` (a real process) and an echo upstream."""
    binary = require_binary("nginx")
    workdir = tmp_path_factory.mktemp("stack")
    files = TLSFiles.create(workdir)
    serve_port, nginx_port = free_port(), free_port()
    config = workdir / "serve.toml"
    config.write_text(
        f"""
[server]
gateway = "nginx"
port = {serve_port}
log_level = "warning"
metrics = false

[validator]
algorithms = ["RS256"]

[[validator.issuers]]
issuer = {json.dumps(issuer.url)}
audiences = [{json.dumps(issuer.audience)}]
jwks_uri = {json.dumps(issuer.jwks_uri)}

[[routes]]
path = "/payments"
dpop = true

[sender]
dpop = true
client_cert_header = "X-SSL-Client-Cert"
trusted_proxies = ["127.0.0.1"]
""",
        encoding="utf-8",
    )
    command = [str(Path(sys.executable).with_name("jwkguard")), "serve", "--config", str(config)]
    with (
        (workdir / "serve.log").open("w") as log,
        ASGIServer(_echo_app()) as upstream,
    ):
        serve = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        block = f"""
    server {{
        listen 127.0.0.1:{nginx_port} ssl;
        ssl_certificate {files.server_cert};
        ssl_certificate_key {files.server_key};
        ssl_client_certificate {files.ca};
        ssl_verify_client on;

        location / {{
            auth_request /_jwkguard;
            auth_request_set $auth_subject $upstream_http_x_auth_subject;
            proxy_set_header X-Auth-Subject $auth_subject;
            proxy_pass http://127.0.0.1:{upstream.port};
        }}

        location = /_jwkguard {{
            internal;
            proxy_pass http://127.0.0.1:{serve_port}/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
        }}
    }}
"""
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{serve_port}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    if serve.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(
                            (workdir / "serve.log").read_text(errors="replace")
                        ) from None
                    time.sleep(0.1)
            with Nginx(binary, workdir / "nginx", block, nginx_port):
                yield nginx_port, files
        finally:
            stop_process(serve)


@pytest.mark.slow
def test_behind_nginx_mtls_the_gateway_enforces_the_certificate_binding(
    stack: tuple[int, TLSFiles], issuer: LocalIssuer
) -> None:
    port, files = stack
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(files.client_pem)})
    url = f"https://127.0.0.1:{port}/orders"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(verify=files.client_context(files.client), timeout=10) as client:
        ok = client.get(url, headers=headers)
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"subject": "user-123"}
    with httpx.Client(verify=files.client_context(files.other_client), timeout=10) as client:
        stolen = client.get(url, headers=headers)
        assert stolen.status_code == 401
        assert stolen.headers["WWW-Authenticate"].startswith(
            'Bearer realm="api", error="invalid_token"'
        )


@pytest.mark.slow
def test_behind_nginx_dpop_proofs_are_checked_against_the_url_the_client_used(
    stack: tuple[int, TLSFiles], issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    port, files = stack
    token = bound(issuer, proof_key)
    url = f"https://127.0.0.1:{port}/payments/42?confirm=1"
    proof = make_dpop_proof(proof_key, method="POST", url=url, access_token=token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    with httpx.Client(verify=files.client_context(files.client), timeout=10) as client:
        ok = client.post(url, headers=headers)
        assert ok.status_code == 200, ok.text
        replay = client.post(url, headers=headers)
        assert replay.status_code == 401
        assert replay.headers["WWW-Authenticate"].startswith(dpop_challenge("invalid_dpop_proof"))
        downgrade = client.post(url, headers={"Authorization": f"Bearer {token}"})
        assert downgrade.status_code == 401
        assert 'error="invalid_dpop_proof"' in downgrade.headers["WWW-Authenticate"]
        unbound = client.post(url, headers={"Authorization": f"Bearer {issuer.mint()}"})
        assert unbound.status_code == 401
        assert unbound.headers["WWW-Authenticate"].startswith("DPoP ")


@pytest.mark.anyio
async def test_with_a_lifecycle_redis_two_servers_share_the_replay_ledger(
    issuer: LocalIssuer, proof_key: SigningKey, redis_server: RedisServer
) -> None:
    config = document(issuer)
    config["lifecycle"] = {
        "redis_url": redis_server.url,
        "prefix": f"fa{time.monotonic_ns()}:",
        "on_unavailable": "fail_closed",
    }
    first, second = (ForwardAuthApp(parse_config(config)) for _ in range(2))
    token = bound(issuer, proof_key)
    proof = proof_for(proof_key, token, "/orders")
    try:
        for app in (first, second):
            await app.start()
            assert app.sender.constraints.dpop is not None
            assert isinstance(app.sender.constraints.dpop.replay, RedisReplayLedger)
        async with gateway(first) as one, gateway(second) as two:
            assert (await ask(one, "/orders", token, proof=proof)).status_code == 200
            check(await ask(two, "/orders", token, proof=proof), "dpop_replayed")
    finally:
        for app in (first, second):
            assert app.fleet is not None
            await app.fleet.aclose()
            await app.validator.aclose()
