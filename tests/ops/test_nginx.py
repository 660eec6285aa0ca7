"""`jwkguard serve` behind a real nginx (`auth_request`), with the configuration from the docs.

nginx runs as a child process with its own prefix, pid file and error log in a temporary
directory, on loopback ports, in front of an upstream that echoes the headers it receives.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jwkguard.testing import LocalIssuer, sign_compact

from ..conftest import require_binary
from ..servers import Nginx, RedisServer, free_port
from .conftest import JWKGUARD, EchoUpstream, forward_auth_toml, jwkguard_serve

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs" / "gateways.md"


def documented_config(*, jwkguard_port: int, upstream_port: int, listen_port: int) -> str:
    """The nginx block of docs/gateways.md, with the test's ports."""
    block = re.search(r"```nginx\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert block is not None, "docs/gateways.md lost its nginx configuration"
    text = block.group(1)
    for old, new in (
        ("server 127.0.0.1:9180;", f"server 127.0.0.1:{jwkguard_port};"),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"),
        ("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{listen_port};"),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def gateway_nginx(
    binary: str, workdir: Path, block: str, listen_port: int, auth_port: int = 0
) -> Nginx:
    """nginx for these tests: 256 connections, its output kept for a failure message."""
    return Nginx(
        binary,
        workdir,
        block,
        listen_port,
        worker_connections=256,
        capture_output=True,
        auth_port=auth_port,
    )


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    return require_binary("nginx")


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoUpstream]:
    with EchoUpstream() as echo:
        yield echo


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    """The gateway's issuer: its keys may be cached for one second only."""
    with LocalIssuer(cache_control="max-age=1") as local:
        yield local


# Keys are found by discovery and cached for a second, so outages are felt at once.
SHORT_CACHE = "min_ttl = 1\nmax_stale = 600\n"


@pytest.fixture(scope="module")
def gateway(
    nginx_binary: str,
    issuer: LocalIssuer,
    upstream: EchoUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Nginx]:
    """nginx on a loopback port -> jwkguard serve (discovery from the issuer) -> upstream."""
    workdir = tmp_path_factory.mktemp("gateway")
    auth_port, listen_port = free_port(), free_port()
    config = forward_auth_toml(
        issuer=issuer.url, audience=issuer.audience, port=auth_port, extra_issuer=SHORT_CACHE
    )
    block = documented_config(
        jwkguard_port=auth_port, upstream_port=upstream.port, listen_port=listen_port
    )
    with (
        jwkguard_serve(config, workdir, auth_port),
        gateway_nginx(nginx_binary, workdir / "nginx", block, listen_port, auth_port) as nginx,
    ):
        yield nginx


def get(gateway: Nginx, path: str, token: str | None = None, **headers: str) -> httpx.Response:
    sent = dict(headers)
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return httpx.get(gateway.url + path, headers=sent, timeout=10)


def test_valid_token_reaches_the_upstream_with_identity_headers(
    gateway: Nginx, issuer: LocalIssuer
) -> None:
    token = issuer.mint(subject="alice", scopes=["orders:read"], client_id="web-app")
    response = get(gateway, "/orders/7?page=2", token)
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["path"] == "/orders/7?page=2"
    assert echoed["headers"]["x-auth-subject"] == "alice"
    assert echoed["headers"]["x-auth-scopes"] == "orders:read"
    assert echoed["headers"]["x-auth-client"] == "web-app"


def test_clients_cannot_forge_identity_headers(gateway: Nginx, issuer: LocalIssuer) -> None:
    forged = {"X-Auth-Subject": "admin", "X-Auth-Scopes": "admin"}
    anonymous = get(gateway, "/public/info", **forged).json()
    assert "x-auth-subject" not in anonymous["headers"]
    assert "x-auth-scopes" not in anonymous["headers"]
    token = issuer.mint(subject="bob", scopes=["orders:read"])
    signed_in = get(gateway, "/orders", token, **forged).json()
    assert signed_in["headers"]["x-auth-subject"] == "bob"
    assert signed_in["headers"]["x-auth-scopes"] == "orders:read"


def test_missing_token_gets_one_bearer_challenge(gateway: Nginx) -> None:
    response = get(gateway, "/orders")
    assert response.status_code == 401
    assert response.headers.get_list("WWW-Authenticate") == ['Bearer realm="orders"']
    assert response.json() == {"error": "unauthorized"}


def test_invalid_tokens_get_401_invalid_token(gateway: Nginx, issuer: LocalIssuer) -> None:
    expired = issuer.mint(scopes=["orders:read"], now=time.time() - 3600, lifetime=60)
    claims = {"iss": issuer.url, "aud": issuer.audience, "sub": "x", "exp": time.time() + 60}
    unsigned = sign_compact({"alg": "none", "kid": issuer.active_key.kid}, claims)
    wrong_audience = issuer.mint(audience="https://elsewhere.example.com")
    for token, words in (
        (expired, "expired"),
        (unsigned, "algorithm"),
        (wrong_audience, "audience"),
    ):
        response = get(gateway, "/orders", token)
        assert response.status_code == 401
        (challenge,) = response.headers.get_list("WWW-Authenticate")
        assert 'error="invalid_token"' in challenge
        assert words in challenge


def test_insufficient_scope_gets_403_naming_the_scope(gateway: Nginx, issuer: LocalIssuer) -> None:
    token = issuer.mint(scopes=["orders:read"])
    response = httpx.post(
        gateway.url + "/orders", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 403
    (challenge,) = response.headers.get_list("WWW-Authenticate")
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="orders:write"' in challenge


def test_ambiguous_paths_stay_400_through_nginx(gateway: Nginx) -> None:
    response = get(gateway, "/public/%2e%2e/admin")
    assert response.status_code == 400
    assert "Retry-After" not in response.headers


def test_rotated_key_is_accepted_after_one_refetch(gateway: Nginx, issuer: LocalIssuer) -> None:
    assert get(gateway, "/orders", issuer.mint(scopes=["orders:read"])).status_code == 200
    issuer.rotate()
    fetches = issuer.requests["/jwks.json"]
    response = get(gateway, "/orders", issuer.mint(scopes=["orders:read"]))
    assert response.status_code == 200
    assert issuer.requests["/jwks.json"] == fetches + 1


def test_issuer_outage_keeps_known_keys_working(gateway: Nginx, issuer: LocalIssuer) -> None:
    token = issuer.mint(scopes=["orders:read"])
    assert get(gateway, "/orders", token).status_code == 200
    health = f"http://127.0.0.1:{gateway.auth_port}/healthz"
    with issuer.outage(503):
        fetches = issuer.requests["/jwks.json"]
        deadline = time.monotonic() + 10
        # The one-second cache runs out: refreshes fail, the known key keeps working.
        while (
            issuer.requests["/jwks.json"] == fetches
            or not (status := httpx.get(health, timeout=5).json()["issuers"][0])["serving_stale"]
        ):
            assert get(gateway, "/orders", token).status_code == 200
            assert time.monotonic() < deadline, "no failed refresh within 10 s"
            time.sleep(0.2)
        assert status["last_error"] is not None
        assert get(gateway, "/orders", token).status_code == 200
        assert httpx.get(health, timeout=5).status_code == 200


def test_no_keys_at_all_gives_503_with_retry_after(
    nginx_binary: str, upstream: EchoUpstream, tmp_path: Path
) -> None:
    with LocalIssuer() as down:
        token = down.mint(scopes=["orders:read"])
        down.fail_with(503)
        auth_port, listen_port = free_port(), free_port()
        config = forward_auth_toml(issuer=down.url, audience=down.audience, port=auth_port)
        block = documented_config(
            jwkguard_port=auth_port, upstream_port=upstream.port, listen_port=listen_port
        )
        with (
            jwkguard_serve(config, tmp_path, auth_port),
            gateway_nginx(nginx_binary, tmp_path / "nginx", block, listen_port) as nginx,
        ):
            response = get(nginx, "/orders", token)
            direct = httpx.get(
                f"http://127.0.0.1:{auth_port}/auth",
                headers={"X-Original-URI": "/orders", "Authorization": f"Bearer {token}"},
            )
            health = httpx.get(f"http://127.0.0.1:{auth_port}/healthz", timeout=5)
    assert response.status_code == 503
    assert response.json() == {"error": "temporarily_unavailable"}
    # jwkguard's own Retry-After (its retry backoff) passes through nginx.
    assert (direct.status_code, direct.json()["reason"]) == (503, "keys_unavailable")
    assert int(response.headers["Retry-After"]) >= 1
    assert int(direct.headers["Retry-After"]) >= 1
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"


def test_gateway_fails_closed_when_jwkguard_is_down(
    nginx_binary: str, upstream: EchoUpstream, issuer: LocalIssuer, tmp_path: Path
) -> None:
    listen_port = free_port()
    block = documented_config(
        jwkguard_port=free_port(), upstream_port=upstream.port, listen_port=listen_port
    )
    with gateway_nginx(nginx_binary, tmp_path / "nginx", block, listen_port) as nginx:
        response = get(nginx, "/orders", issuer.mint(scopes=["orders:read"]))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {"error": "temporarily_unavailable"}


def test_revoked_subject_is_refused_through_nginx(
    nginx_binary: str,
    issuer: LocalIssuer,
    upstream: EchoUpstream,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    auth_port, listen_port = free_port(), free_port()
    config = forward_auth_toml(issuer=issuer.url, audience=issuer.audience, port=auth_port)
    config += f'\n[lifecycle]\nredis_url = "{redis_server.url}"\nprefix = "nginx-test:"\n'
    block = documented_config(
        jwkguard_port=auth_port, upstream_port=upstream.port, listen_port=listen_port
    )
    token = issuer.mint(subject="mallory", scopes=["orders:read"], now=time.time() - 5)
    with (
        jwkguard_serve(config, tmp_path, auth_port),
        gateway_nginx(nginx_binary, tmp_path / "nginx", block, listen_port) as nginx,
    ):
        assert get(nginx, "/orders", token).status_code == 200
        command = [JWKGUARD, "cut-off", "subject", "mallory", "--issuer", issuer.url]
        command += ["--why", "offboarded", "--redis", redis_server.url, "--prefix", "nginx-test:"]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        # The fleet layer's own tests hold it to one second; here the path through nginx is
        # under test, on a machine that may be busy, so the bound is looser.
        deadline = time.monotonic() + 5
        while (response := get(nginx, "/orders", token)).status_code == 200:
            assert time.monotonic() < deadline, "still accepted 5 s after the cut-off"
            time.sleep(0.05)
    assert response.status_code == 401
    assert "cut off" in response.headers["WWW-Authenticate"]
