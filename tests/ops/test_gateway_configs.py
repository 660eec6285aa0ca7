"""The documented Traefik and Envoy configurations keep clients' copies of original-request
headers away from `jwkguard serve`.

Traefik and Envoy are not installed here, so each documented configuration is read from
docs/gateways.md and applied the way that gateway applies it (Traefik ForwardAuth copies only
`authRequestHeaders` and, with `trustForwardHeader: false`, writes the X-Forwarded-* headers
itself; Envoy ext_authz copies only `allowed_headers` plus Host, method, path and
Authorization), then the resulting subrequest goes to a real server over HTTP. A hostile client
sending every alternative header must get exactly the answer an honest one gets. nginx runs
for real in test_nginx.py.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from jwkguard.testing import LocalIssuer

from ..servers import ASGIServer
from .test_serve_hostile import HOST, reason, send, serving, start

DOCS = Path(__file__).resolve().parents[2] / "docs" / "gateways.md"

HOSTILE = [
    (name, value)
    for name in (
        "X-Original-URI",
        "X-Forwarded-Uri",
        "X-Original-Method",
        "X-Forwarded-Method",
        "X-Forwarded-Host",
        "X-Forwarded-Proto",
    )
    for value in {
        "X-Original-URI": ("/public/x", "/orders"),
        "X-Forwarded-Uri": ("/public/x", "/orders"),
        "X-Original-Method": ("GET", "HEAD"),
        "X-Forwarded-Method": ("GET", "HEAD"),
        "X-Forwarded-Host": ("evil.example", HOST),
        "X-Forwarded-Proto": ("gopher", "https"),
    }[name]
]


def documented(flavour: str) -> dict[str, Any]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split(f"## {flavour}\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    loaded: dict[str, Any] = yaml.safe_load(block)
    return loaded


def traefik_subrequest(
    method: str, target: str, client_headers: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """What Traefik's ForwardAuth, configured as documented, sends to jwkguard."""
    forward_auth = documented("Traefik")["http"]["middlewares"]["jwkguard"]["forwardAuth"]
    assert forward_auth["trustForwardHeader"] is False
    allowed = {name.lower() for name in forward_auth["authRequestHeaders"]}
    copied = [(name, value) for name, value in client_headers if name.lower() in allowed]
    own = [
        ("X-Forwarded-Method", method),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", HOST),
        ("X-Forwarded-Uri", target),
    ]
    return copied + own


def envoy_subrequest(
    client_headers: list[tuple[str, str]],
) -> tuple[str, list[tuple[str, str]]]:
    """The path prefix and headers Envoy's ext_authz, configured as documented, sends."""
    (http_filter, _router) = documented("Envoy")["http_filters"]
    config = http_filter["typed_config"]
    assert config["failure_mode_allow"] is False
    service = config["http_service"]
    patterns = service["authorization_request"]["allowed_headers"]["patterns"]
    allowed = {pattern["exact"] for pattern in patterns} | {"authorization"}
    copied = [(name, value) for name, value in client_headers if name.lower() in allowed]
    # Envoy writes x-forwarded-proto itself at the edge, over the client's.
    copied = [(n, v) for n, v in copied if n.lower() != "x-forwarded-proto"]
    return service["path_prefix"], [("Host", HOST), ("X-Forwarded-Proto", "https"), *copied]


@pytest.fixture(scope="module")
def servers(issuer: LocalIssuer) -> Iterator[dict[str, ASGIServer]]:
    with serving(issuer, "traefik", "envoy") as running:
        yield running


CASES = [
    ("GET", "/admin", None, 401),
    ("GET", "/admin/users", [], 403),
    ("DELETE", "/orders/7", ["orders:read"], 403),
    ("GET", "/orders/7", ["orders:read"], 200),
]


def client_authorization(issuer: LocalIssuer, scopes: list[str] | None) -> list[tuple[str, str]]:
    """The client's Authorization header: none, or a token carrying ``scopes``."""
    return [] if scopes is None else [("Authorization", f"Bearer {issuer.mint(scopes=scopes)}")]


def assert_alike(honest: Any, hostile: Any, status: int) -> None:
    """The hostile copy of a request is answered as the honest one: same status, same reason."""
    assert honest.status_code == hostile.status_code == status
    if status != 200:
        assert reason(hostile) == reason(honest)


@pytest.mark.parametrize(("method", "target", "scopes", "status"), CASES)
def test_documented_traefik_config_lets_no_client_copy_decide(
    servers: dict[str, ASGIServer],
    issuer: LocalIssuer,
    method: str,
    target: str,
    scopes: list[str] | None,
    status: int,
) -> None:
    auth = client_authorization(issuer, scopes)
    honest = send(servers["traefik"], "GET", "/auth", traefik_subrequest(method, target, auth))
    hostile = send(
        servers["traefik"], "GET", "/auth", traefik_subrequest(method, target, auth + HOSTILE)
    )
    assert_alike(honest, hostile, status)


@pytest.mark.parametrize(("method", "target", "scopes", "status"), CASES)
def test_documented_envoy_config_lets_no_client_copy_decide(
    servers: dict[str, ASGIServer],
    issuer: LocalIssuer,
    method: str,
    target: str,
    scopes: list[str] | None,
    status: int,
) -> None:
    auth = client_authorization(issuer, scopes)
    prefix, headers = envoy_subrequest(auth)
    honest = send(servers["envoy"], method, prefix + target, headers)
    prefix, headers = envoy_subrequest(auth + HOSTILE)
    hostile = send(servers["envoy"], method, prefix + target, headers)
    assert_alike(honest, hostile, status)


def test_without_the_documented_filtering_a_leak_is_refused_not_obeyed(
    servers: dict[str, ASGIServer],
) -> None:
    """Traefik without authRequestHeaders copies every client header: jwkguard says 400."""
    leaky = [("X-Original-URI", "/public/x"), *traefik_subrequest("GET", "/admin", [])]
    assert reason(send(servers["traefik"], "GET", "/auth", leaky)) == (
        400,
        "conflicting_original_header",
    )


# -- identity headers on the forwarded request ---------------------------------------------

FORGED_IDENTITY = [
    ("X-Auth-Subject", "admin"),
    ("X-Auth-Scopes", "admin"),
    ("X-Auth-Client", "trusted-backoffice"),
]
IDENTITY = {"x-auth-subject", "x-auth-scopes", "x-auth-client"}


def envoy_upstream(client_headers: list[tuple[str, str]], answer: Any) -> dict[str, list[str]]:
    """The identity headers the upstream gets after Envoy's ext_authz, as documented, allowed.

    Envoy sets each ``allowed_upstream_headers`` header the answer carries (replacing the
    client's copies), then removes the headers the answer names in
    ``x-envoy-auth-headers-to-remove``; every other client header passes as it came.
    """
    service = documented("Envoy")["http_filters"][0]["typed_config"]["http_service"]
    patterns = service["authorization_response"]["allowed_upstream_headers"]["patterns"]
    allowed = {pattern["exact"] for pattern in patterns}
    headers = [(name.lower(), value) for name, value in client_headers]
    for name in sorted(allowed):
        values = answer.headers.get_list(name)
        if values:
            headers = [(n, v) for n, v in headers if n != name] + [(name, v) for v in values]
    removed = {
        item.strip().lower()
        for value in answer.headers.get_list("x-envoy-auth-headers-to-remove")
        for item in value.split(",")
        if item.strip()
    }
    upstream: dict[str, list[str]] = {}
    for name, value in headers:
        if name in IDENTITY and name not in removed:
            upstream.setdefault(name, []).append(value)
    return upstream


def traefik_upstream(client_headers: list[tuple[str, str]], answer: Any) -> dict[str, list[str]]:
    """The identity headers the upstream gets after Traefik's ForwardAuth, as documented.

    For each ``authResponseHeaders`` name Traefik deletes the client's copies, then copies the
    answer's, if any.
    """
    forward_auth = documented("Traefik")["http"]["middlewares"]["jwkguard"]["forwardAuth"]
    names = {name.lower() for name in forward_auth["authResponseHeaders"]}
    headers = [(name.lower(), value) for name, value in client_headers if name.lower() not in names]
    headers += [(name, value) for name in sorted(names) for value in answer.headers.get_list(name)]
    upstream: dict[str, list[str]] = {}
    for name, value in headers:
        if name in IDENTITY:
            upstream.setdefault(name, []).append(value)
    return upstream


@pytest.fixture(scope="module")
def documented_servers(issuer: LocalIssuer) -> Iterator[dict[str, ASGIServer]]:
    """Servers with the documented claim header (``X-Auth-Client`` from ``client_id``)."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(
                start(issuer, name, claim_headers={"X-Auth-Client": "client_id"})
            )
            for name in ("traefik", "envoy")
        }


IDENTITY_CASES = [
    # (target, claims of the token or None for no token, what the upstream must see)
    ("/public/x", None, {}),
    (
        "/orders/7",
        {"scopes": ["orders:read"]},
        {"x-auth-subject": ["user-123"], "x-auth-scopes": ["orders:read"]},
    ),
    (
        "/public/x",
        {"client_id": {"not": "a string"}},  # a claim without a header form sends none
        {"x-auth-subject": ["user-123"], "x-auth-scopes": [""]},
    ),
    ("/public/x", {"omit": ("sub",)}, {"x-auth-scopes": [""]}),
]


@pytest.mark.parametrize("flavour", ["traefik", "envoy"])
@pytest.mark.parametrize(("target", "claims", "expected"), IDENTITY_CASES)
def test_documented_configs_let_no_forged_identity_header_reach_the_upstream(
    documented_servers: dict[str, ASGIServer],
    issuer: LocalIssuer,
    flavour: str,
    target: str,
    claims: dict[str, Any] | None,
    expected: dict[str, list[str]],
) -> None:
    """An identity header jwkguard does not set must not survive as the client wrote it."""
    auth = [] if claims is None else [("Authorization", f"Bearer {issuer.mint(**claims)}")]
    client = auth + FORGED_IDENTITY
    server = documented_servers[flavour]
    if flavour == "envoy":
        prefix, headers = envoy_subrequest(client)
        answer = send(server, "GET", prefix + target, headers)
        upstream = envoy_upstream(client, answer)
    else:
        answer = send(server, "GET", "/auth", traefik_subrequest("GET", target, client))
        upstream = traefik_upstream(client, answer)
    assert answer.status_code == 200, answer.text
    assert upstream == expected


def test_documented_envoy_config_passes_what_a_client_needs_of_a_refusal() -> None:
    """Envoy answers a 5xx of the authorization service with ``status_on_error`` (403 unless
    set): an outage must stay a 503, not become "forbidden"; and ``allowed_client_headers``
    must pass the challenge, ``Retry-After`` and the DPoP nonce a client retries with."""
    config = documented("Envoy")["http_filters"][0]["typed_config"]
    assert config["status_on_error"] == {"code": "ServiceUnavailable"}
    response = config["http_service"]["authorization_response"]
    passed = {pattern["exact"] for pattern in response["allowed_client_headers"]["patterns"]}
    assert {"www-authenticate", "retry-after", "dpop-nonce"} <= passed


def test_each_documented_gateway_sets_every_documented_identity_header() -> None:
    """Every identity header of the documented [server] (X-Auth-Subject, X-Auth-Scopes and each
    claim_headers name) is set, or removed, by each documented gateway: one it leaves alone
    reaches the upstream as the client wrote it."""
    text = DOCS.read_text(encoding="utf-8")
    (toml_block,) = re.findall(r"```toml\n(\[server\].*?)```", text, re.S)
    claim_headers = tomllib.loads(toml_block)["server"]["claim_headers"]
    expected = {"x-auth-subject", "x-auth-scopes"} | {name.lower() for name in claim_headers}
    (nginx,) = re.findall(r"```nginx\n(.*?)```", text, re.S)
    nginx_set = {
        name.lower() for name in re.findall(r"proxy_set_header\s+(X-Auth-[\w-]+)\s+\$", nginx)
    }
    traefik = documented("Traefik")["http"]["middlewares"]["jwkguard"]["forwardAuth"]
    service = documented("Envoy")["http_filters"][0]["typed_config"]["http_service"]
    envoy = service["authorization_response"]["allowed_upstream_headers"]["patterns"]
    assert nginx_set == expected
    assert {name.lower() for name in traefik["authResponseHeaders"]} == expected
    assert {pattern["exact"] for pattern in envoy} == expected
