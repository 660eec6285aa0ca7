"""`jwkguard serve` behind a real nginx (`auth_request`), with the configuration from the docs.

nginx runs as a child process with its own prefix, pid file and error log in a temporary
directory, on loopback ports, in front of an upstream that echoes the headers it receives.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jwkguard._forward_auth import decode_list, decode_text
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
    forged = {"X-Auth-Subject": "admin", "X-Auth-Scopes": "admin", "X-Auth-Client": "backoffice"}
    anonymous = get(gateway, "/public/info", **forged).json()
    assert "x-auth-subject" not in anonymous["headers"]
    assert "x-auth-scopes" not in anonymous["headers"]
    assert "x-auth-client" not in anonymous["headers"]
    token = issuer.mint(subject="bob", scopes=["orders:read"])  # no client_id claim
    signed_in = get(gateway, "/orders", token, **forged).json()
    assert signed_in["headers"]["x-auth-subject"] == "bob"
    assert signed_in["headers"]["x-auth-scopes"] == "orders:read"
    assert "x-auth-client" not in signed_in["headers"]


def test_every_configured_claim_header_is_the_gateways_own(
    gateway: Nginx, issuer: LocalIssuer
) -> None:
    """A claim header nginx does not set passes the client's copy on: jwkguard serve is
    configured with X-Auth-Tenant, so the documented configuration must set it too."""
    token = issuer.mint(subject="bob", scopes=["orders:read"], org={"tenant": "acme"})
    echoed = get(gateway, "/orders", token, **{"X-Auth-Tenant": "evil"}).json()["headers"]
    assert echoed.get("x-auth-tenant") == "acme"
    anonymous = get(gateway, "/public/info", **{"X-Auth-Tenant": "evil"}).json()["headers"]
    assert "x-auth-tenant" not in anonymous


def test_missing_token_gets_one_bearer_challenge(gateway: Nginx) -> None:
    response = get(gateway, "/orders")
    assert response.status_code == 401
    assert response.headers.get_list("WWW-Authenticate") == ['Bearer realm="orders"']
    assert response.json() == ask_directly(gateway, "GET", "/orders").json()
    assert response.json()["reason"] == "missing_token"


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


# -- hostile clients against the documented configuration --------------------------------

ORIGINAL_REQUEST_HEADERS = (
    "X-Original-URI",
    "X-Original-Method",
    "X-Forwarded-Uri",
    "X-Forwarded-Method",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
)


def ask_directly(
    gateway: Nginx, method: str, target: str, token: str | None = None
) -> httpx.Response:
    """What jwkguard answers when asked the way the documented nginx config asks."""
    headers = {
        "X-Original-URI": target,
        "X-Original-Method": method,
        "X-Forwarded-Host": "127.0.0.1",
        "X-Forwarded-Proto": "http",
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(f"http://127.0.0.1:{gateway.auth_port}/auth", headers=headers, timeout=10)


def raw(
    gateway: Nginx, method: str, target: str, headers: list[tuple[str, str]] | None = None
) -> tuple[int, Any, bytes]:
    """Send ``target`` exactly as written (no client-side normalisation) through nginx."""
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers or []:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def hostile_headers(target: str, method: str, host: str) -> list[tuple[str, str]]:
    """Every header any gateway flavour uses for the original request, each sent twice."""
    values = {
        "X-Original-URI": target,
        "X-Forwarded-Uri": target,
        "X-Original-Method": method,
        "X-Forwarded-Method": method,
        "X-Forwarded-Host": host,
        "X-Forwarded-Proto": "https",
    }
    return [(name, value) for name in ORIGINAL_REQUEST_HEADERS for value in (values[name],) * 2]


@pytest.mark.parametrize(
    ("method", "target", "token_scopes", "status"),
    [
        ("GET", "/admin", None, 401),  # "it was /public" must not make /admin anonymous
        ("GET", "/admin/users", [], 403),  # nor pass a token without the admin scope
        ("DELETE", "/orders/7", ["orders:read"], 403),  # "it was a GET" must not downgrade
    ],
)
def test_client_copies_of_original_request_headers_decide_nothing(
    gateway: Nginx,
    issuer: LocalIssuer,
    method: str,
    target: str,
    token_scopes: list[str] | None,
    status: int,
) -> None:
    token = None if token_scopes is None else issuer.mint(scopes=token_scopes)
    auth = [] if token is None else [("Authorization", f"Bearer {token}")]
    honest = raw(gateway, method, target, auth)
    forged = raw(
        gateway, method, target, auth + hostile_headers("/public/x", "GET", "evil.example")
    )
    assert honest[0] == forged[0] == status
    assert json.loads(forged[2]) == json.loads(honest[2])
    assert forged[1].get_all("WWW-Authenticate") == honest[1].get_all("WWW-Authenticate")


@pytest.mark.parametrize(
    "target",
    [
        "/public/..;/admin",
        "/admin;x=1",
        "/public;/../admin",
        "/public/%252e%252e/admin",
        "/public/%3B/admin",
        "/Admin",
        "/PUBLIC/x",
        "//admin",
        "/public/x#/../admin",
        "/%EF%BD%81dmin",  # a fullwidth "a": NFKC reads /admin
    ],
)
def test_ambiguous_paths_are_refused_through_nginx_with_the_challenge(
    gateway: Nginx, issuer: LocalIssuer, target: str
) -> None:
    token = issuer.mint(scopes=["orders:read"])
    status, headers, body = raw(gateway, "GET", target, [("Authorization", f"Bearer {token}")])
    if status == 400 and not body.startswith(b"{"):
        pytest.fail(f"nginx itself refused {target!r}; the test must reach jwkguard")
    assert status == 400
    assert json.loads(body)["reason"] == "ambiguous_path"
    (challenge,) = headers.get_all("WWW-Authenticate")
    assert 'error="invalid_request"' in challenge
    assert headers.get("Retry-After") is None


def test_refusals_carry_jwkguards_challenge_and_body_through_nginx(
    gateway: Nginx, issuer: LocalIssuer
) -> None:
    expired = issuer.mint(scopes=["orders:read"], now=time.time() - 3600, lifetime=60)
    reader = issuer.mint(scopes=["orders:read"])
    for method, target, token in (
        ("GET", "/orders", None),
        ("GET", "/orders", expired),
        ("POST", "/orders", reader),
        ("PATCH", "/orders", reader),
        ("GET", "/orders?access_token=x", None),
    ):
        through = httpx.request(
            method,
            gateway.url + target,
            headers={} if token is None else {"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        direct = ask_directly(gateway, method, target, token)
        assert through.status_code == direct.status_code, (method, target)
        assert through.json() == direct.json(), (method, target)
        assert through.headers.get_list("WWW-Authenticate") == direct.headers.get_list(
            "WWW-Authenticate"
        )
        assert "X-Auth-Error-Body" not in through.headers


def test_head_follows_the_get_rule_and_unnamed_methods_are_refused(
    gateway: Nginx, issuer: LocalIssuer
) -> None:
    nobody = issuer.mint(scopes=[])
    reader = issuer.mint(scopes=["orders:read"])
    assert raw(gateway, "HEAD", "/orders", [("Authorization", f"Bearer {nobody}")])[0] == 403
    assert raw(gateway, "HEAD", "/orders", [("Authorization", f"Bearer {reader}")])[0] == 200
    for method in ("PATCH", "OPTIONS", "PROPFIND"):
        status, _, body = raw(gateway, method, "/orders/7", [("Authorization", f"Bearer {reader}")])
        assert status == 403, method
        assert json.loads(body)["reason"] == "method_not_allowed"


def test_identity_headers_reach_the_upstream_encoded_and_decodable(
    gateway: Nginx, issuer: LocalIssuer
) -> None:
    scopes = ["orders:read", "caf\u00e9", "tab\there", "line\r\nX-Admin:yes", "\u65e5\u672c"]
    token = issuer.mint(subject=" \u00e9mile ", scopes=scopes, client_id="web,admin")
    response = get(gateway, "/orders", token)
    assert response.status_code == 200
    echoed = response.json()["headers"]
    assert "x-admin" not in echoed
    assert decode_text(echoed["x-auth-subject"]) == " \u00e9mile "
    assert sorted(decode_list(echoed["x-auth-scopes"], " ")) == sorted(scopes)
    assert decode_list(echoed["x-auth-client"]) == ["web,admin"]


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
                headers={
                    "X-Original-URI": "/orders",
                    "X-Original-Method": "GET",
                    "X-Forwarded-Host": "127.0.0.1",
                    "Authorization": f"Bearer {token}",
                },
            )
            health = httpx.get(f"http://127.0.0.1:{auth_port}/healthz", timeout=5)
    assert response.status_code == 503
    assert response.json() == direct.json()
    assert response.json()["error"] == "temporarily_unavailable"
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
    assert response.json() == {
        "error": "temporarily_unavailable",
        "reason": "authorization_unreachable",
    }


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
