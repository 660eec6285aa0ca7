"""`jwkguard serve` attacked over real HTTP (uvicorn on 127.0.0.1), one server per gateway flavour.

The client here plays a gateway that lets a hostile client's headers through: the trusted peer
sends every alternative original-request header, duplicates, conflicting values, ambiguous
paths, unnamed methods and claim values that are hard to put in a header. nginx itself is
attacked through its documented configuration in test_nginx.py.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from jwkguard._forward_auth import ForwardAuthApp, decode_list, decode_text, parse_config
from jwkguard._forward_auth._routes import AmbiguousPath
from jwkguard.testing import LocalIssuer

from ..servers import ASGIServer, free_port
from .conftest import forward_auth_toml, inline_validator, jwkguard_serve

HOST = "api.example.com"

# What each flavour reads, and the headers the other flavours would use for the same thing.
NGINX = ("X-Original-URI", "X-Original-Method")
TRAEFIK = ("X-Forwarded-Uri", "X-Forwarded-Method")


def document(issuer: LocalIssuer, gateway: str, **server: Any) -> dict[str, Any]:
    return {
        "server": {
            "gateway": gateway,
            "metrics": False,
            "audit": False,
            "claim_headers": {"X-Auth-Groups": "groups", "X-Auth-Name": "name"},
            **server,
        },
        "validator": inline_validator(issuer),
        "routes": [
            {"path": "/public", "anonymous": True},
            {"path": "/orders", "methods": ["GET"], "scopes": ["orders:read"]},
            {"path": "/orders", "methods": ["POST", "PUT", "PATCH", "DELETE"], "scopes": ["w"]},
            {"path": "/reports", "methods": ["GET"], "scopes": ["reports:read"]},
            {"path": "/reports", "scopes": ["admin"]},
            {"path": "/admin", "scopes": ["admin"]},
        ],
    }


def start(issuer: LocalIssuer, gateway: str, **server: Any) -> ASGIServer:
    app = ForwardAuthApp(parse_config(document(issuer, gateway, **server)))
    return ASGIServer(app, lifespan="on")


@contextmanager
def serving(issuer: LocalIssuer, *gateways: str) -> Iterator[dict[str, ASGIServer]]:
    """One running server per gateway flavour, stopped on the way out."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(start(issuer, name)) for name in gateways}


@pytest.fixture(scope="module")
def servers(issuer: LocalIssuer) -> Iterator[dict[str, ASGIServer]]:
    """One running server per flavour, the test client on loopback as its trusted gateway."""
    with serving(issuer, "nginx", "traefik", "envoy") as running:
        yield running


def bearer(token: str | None) -> list[tuple[str, str]]:
    return [] if token is None else [("Authorization", f"Bearer {token}")]


def ask(
    servers: dict[str, ASGIServer],
    gateway: str,
    method: str,
    target: str,
    token: str | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> httpx.Response:
    """Ask the flavour's server about ``method target`` the way that gateway asks."""
    server = servers[gateway]
    headers = bearer(token) + (extra or [])
    if gateway == "envoy":
        return send(server, method, "/envoy" + target, [("Host", HOST), *headers])
    names = NGINX if gateway == "nginx" else TRAEFIK
    described = [(names[0], target), (names[1], method), ("X-Forwarded-Host", HOST)]
    return send(server, "GET", "/auth", described + headers)


def send(
    server: ASGIServer, method: str, target: str, headers: list[tuple[str, str]]
) -> httpx.Response:
    """One raw HTTP/1.1 request: the target and headers exactly as given, duplicates kept."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        if not any(name.lower() == "host" for name, _ in headers):
            connection.putheader("Host", f"127.0.0.1:{server.port}")
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        body = answer.read()
        return httpx.Response(answer.status, headers=answer.getheaders(), content=body)
    finally:
        connection.close()


def reason(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json().get("reason", "")


# -- 1. whose word is the original request ------------------------------------------------

FLAVOURS = ["nginx", "traefik", "envoy"]


@pytest.mark.parametrize("gateway", FLAVOURS)
def test_every_flavour_judges_the_request_its_gateway_describes(
    servers: dict[str, ASGIServer], issuer: LocalIssuer, gateway: str
) -> None:
    reader = issuer.mint(scopes=["orders:read"])
    assert ask(servers, gateway, "GET", "/orders/7", reader).status_code == 200
    assert ask(servers, gateway, "GET", "/admin", None).status_code == 401
    assert ask(servers, gateway, "DELETE", "/orders/7", reader).status_code == 403
    assert ask(servers, gateway, "GET", "/public/x").status_code == 200


@pytest.mark.parametrize("gateway", FLAVOURS)
@pytest.mark.parametrize(
    ("method", "target", "scopes", "status"),
    [
        ("GET", "/admin", None, 401),  # no token: "it was /public" must not make it anonymous
        ("DELETE", "/orders/7", ["orders:read"], 403),  # "it was a GET" must not downgrade
    ],
)
def test_other_flavours_headers_cannot_rewrite_the_request(
    servers: dict[str, ASGIServer],
    issuer: LocalIssuer,
    gateway: str,
    method: str,
    target: str,
    scopes: list[str] | None,
    status: int,
) -> None:
    token = None if scopes is None else issuer.mint(scopes=scopes)
    assert ask(servers, gateway, method, target, token).status_code == status
    own = {"nginx": NGINX, "traefik": TRAEFIK, "envoy": ()}[gateway]
    for name in ("X-Original-URI", "X-Forwarded-Uri", "X-Original-Method", "X-Forwarded-Method"):
        if name in own:
            continue
        forged_method = "OPTIONS" if method == "GET" else "GET"
        value = forged_method if name.endswith("Method") else "/public/x"
        response = ask(servers, gateway, method, target, token, [(name, value)])
        assert reason(response) == (400, "conflicting_original_header"), name
    if gateway == "envoy":
        forged_host = ask(servers, gateway, method, target, token, [("X-Forwarded-Host", "x.y")])
        assert reason(forged_host) == (400, "conflicting_original_header")


@pytest.mark.parametrize("gateway", FLAVOURS)
def test_other_flavours_headers_that_agree_change_nothing(
    servers: dict[str, ASGIServer], issuer: LocalIssuer, gateway: str
) -> None:
    reader = issuer.mint(scopes=["orders:read"])
    same = [
        ("X-Original-URI", "/orders/7"),
        ("X-Forwarded-Uri", "/orders/7"),
        ("X-Original-Method", "GET"),
        ("X-Forwarded-Method", "GET"),
    ]
    own = {"nginx": NGINX, "traefik": TRAEFIK, "envoy": ()}[gateway]
    extra = [(name, value) for name, value in same if name not in own]
    assert ask(servers, gateway, "GET", "/orders/7", reader, extra).status_code == 200


@pytest.mark.parametrize("gateway", ["nginx", "traefik"])
@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("second", ["same", "/public/x"])
def test_a_duplicated_original_request_header_is_refused_never_first_wins(
    servers: dict[str, ASGIServer], gateway: str, index: int, second: str
) -> None:
    names = (*(NGINX if gateway == "nginx" else TRAEFIK), "X-Forwarded-Host")
    values = ["/admin", "GET", HOST]
    headers = [(name, value) for name, value in zip(names, values, strict=True)]
    headers.insert(index + 1, (names[index], values[index] if second == "same" else second))
    response = send(servers[gateway], "GET", "/auth", headers)
    assert reason(response) == (400, "duplicate_original_header")
    (challenge,) = response.headers.get_list("WWW-Authenticate")
    assert 'error="invalid_request"' in challenge


@pytest.mark.parametrize("gateway", FLAVOURS)
def test_a_duplicated_forwarded_proto_is_refused(
    servers: dict[str, ASGIServer], issuer: LocalIssuer, gateway: str
) -> None:
    token = issuer.mint(scopes=["orders:read"])
    protos = [("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http")]
    response = ask(servers, gateway, "GET", "/orders", token, protos)
    assert reason(response) == (400, "duplicate_original_header")


@pytest.mark.parametrize("gateway", ["nginx", "traefik"])
@pytest.mark.parametrize(
    ("missing", "expected"),
    [(0, "missing_original_uri"), (1, "missing_original_method"), (2, "missing_original_host")],
)
def test_a_missing_original_request_header_is_refused_not_guessed(
    servers: dict[str, ASGIServer], gateway: str, missing: int, expected: str
) -> None:
    names = (*(NGINX if gateway == "nginx" else TRAEFIK), "X-Forwarded-Host")
    headers = [(n, v) for n, v in zip(names, ["/orders", "GET", HOST], strict=True)]
    del headers[missing]
    assert reason(send(servers[gateway], "GET", "/auth", headers)) == (400, expected)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([("X-Original-Method", "get")], "bad_method"),
        ([("X-Original-Method", "GET /admin")], "bad_method"),
        ([("X-Forwarded-Host", "api.example.com/admin")], "bad_host"),
        ([("X-Forwarded-Host", "a.example, admin.example.com")], "bad_host"),
        ([("X-Forwarded-Proto", "gopher")], "bad_scheme"),
    ],
)
def test_malformed_original_request_values_are_refused(
    servers: dict[str, ASGIServer], extra: list[tuple[str, str]], expected: str
) -> None:
    base = {"X-Original-URI": "/orders", "X-Original-Method": "GET", "X-Forwarded-Host": HOST}
    for name, value in extra:
        base[name] = value
    assert reason(send(servers["nginx"], "GET", "/auth", list(base.items()))) == (400, expected)


def test_each_flavour_serves_only_its_own_endpoint(servers: dict[str, ASGIServer]) -> None:
    assert send(servers["nginx"], "GET", "/envoy/orders", [("Host", HOST)]).status_code == 404
    assert send(servers["traefik"], "GET", "/envoy/orders", [("Host", HOST)]).status_code == 404
    assert send(servers["envoy"], "GET", "/auth", [("Host", HOST)]).status_code == 404


def test_a_peer_outside_trusted_proxies_is_refused(issuer: LocalIssuer) -> None:
    token = issuer.mint(scopes=["orders:read", "admin"])
    with start(issuer, "nginx", trusted_proxies=["192.0.2.0/24"]) as server:
        servers = {"nginx": server}
        response = ask(servers, "nginx", "GET", "/orders", token)
        anonymous = ask(servers, "nginx", "GET", "/public/x")
        health = send(server, "GET", "/healthz", [])
    assert reason(response) == (403, "untrusted_peer")
    assert reason(anonymous) == (403, "untrusted_peer")
    assert "X-Auth-Subject" not in response.headers
    assert health.status_code == 200


# -- 2. one path, read the way the upstream reads it -------------------------------------

AMBIGUOUS = [
    "/public/..;/admin",  # Tomcat and Spring read "..;" as ".."
    "/public;/../admin",
    "/admin;x=1",  # path parameters
    "/public/%3B/../admin",
    "/public/%252e%252e/admin",  # double encoding
    "/public/%25",
    "/public/%2e%2e/admin",
    "/public/%2F../admin",
    "/public/x#/../../admin",  # no fragment in a request target (RFC 9112)
    "/public/%EF%BC%8F..%EF%BC%8Fadmin",  # fullwidth solidus: NFKC reads "/"
    "/Admin",  # a case-insensitive upstream serves /admin
    "/ADMIN/users",
    "/Public/secret",  # a case-sensitive upstream's private /Public is no /public
    "/adm%C4%B1n",  # dotless i: JavaScript's and Java's upper case of it is "I"
    "/public/%C0%AE%C0%AE/admin",  # overlong UTF-8 for ".."
    "/admin%20",  # IIS and older Spring trim spaces at the ends of a segment: /admin
    "/%20admin/users",
    "/admin.",  # IIS (Windows) drops trailing dots of a segment: /admin
    "/admin.json",  # Rails routes it to /admin (format json), as Spring's suffix match did
    "/admin.tar.gz?x=1",
    "/Reports.csv",  # a case-insensitive upstream with suffix matching serves /reports
    "/admin./users",
    "/adm%C4%B0n",  # dotted capital I: Java's equalsIgnoreCase reads it as "i"
    "//admin",  # unmerged: not /admin; some parsers read "//admin" as a host
    "//public/x",
    "/public/x y",
    "/public/\u00e9",
]


@pytest.mark.parametrize("gateway", ["nginx", "traefik"])
@pytest.mark.parametrize("target", AMBIGUOUS)
def test_ambiguous_paths_are_refused_with_invalid_request(
    servers: dict[str, ASGIServer], issuer: LocalIssuer, gateway: str, target: str
) -> None:
    token = issuer.mint(scopes=["orders:read"])
    names = NGINX if gateway == "nginx" else TRAEFIK
    headers = [(names[0], target), (names[1], "GET"), ("X-Forwarded-Host", HOST)]
    for _ in range(2):  # the second answer comes from the server's route memo
        response = httpx.get(
            f"{servers[gateway].url}/auth",
            headers=[(k.encode(), v.encode()) for k, v in headers + bearer(token)],
        )
        assert reason(response) == (400, "ambiguous_path")
        assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("target", [t for t in AMBIGUOUS if " " not in t and "\u00e9" not in t])
def test_ambiguous_request_lines_are_refused_by_the_envoy_endpoint(
    servers: dict[str, ASGIServer], issuer: LocalIssuer, target: str
) -> None:
    response = ask(servers, "envoy", "GET", target, issuer.mint(scopes=["orders:read"]))
    assert response.status_code == 400
    if response.headers.get("content-type") == "application/json":
        assert response.json()["reason"] == "ambiguous_path"


@pytest.mark.parametrize(
    "target",
    [
        "/%65nvoy/admin",  # the prefix decoded is /envoy, its raw bytes are not
        "/envo%79/public/x",
        "/envoy%2Fadmin",
        "/envoy%2F/public/x",
        "/ENVOY/public/x",
        "http://api.example.com/envoy/public/x",  # absolute form
        "/envoyadmin",
    ],
)
def test_the_envoy_prefix_spelled_another_way_is_never_an_original_path(
    servers: dict[str, ASGIServer], issuer: LocalIssuer, target: str
) -> None:
    """The endpoint is matched on the decoded path, the original path cut from the raw one: a
    prefix spelled otherwise leaves a target that is refused, never one that passes."""
    response = send(servers["envoy"], "GET", target, [("Host", HOST), *bearer(issuer.mint())])
    assert response.status_code in (400, 404), response.text
    assert "X-Auth-Subject" not in response.headers


@pytest.mark.parametrize("gateway", FLAVOURS)
def test_what_remains_is_matched_on_one_canonical_form(
    servers: dict[str, ASGIServer], issuer: LocalIssuer, gateway: str
) -> None:
    nobody = issuer.mint(scopes=[])
    reader = issuer.mint(scopes=["orders:read"])
    assert ask(servers, gateway, "GET", "/%61dmin", nobody).status_code == 403
    assert ask(servers, gateway, "GET", "/admin//users", nobody).status_code == 403
    assert ask(servers, gateway, "GET", "/orders//7", nobody).status_code == 403
    assert ask(servers, gateway, "GET", "/orders/caf%C3%A9?q=%3B", reader).status_code == 200
    assert ask(servers, gateway, "GET", "/orders/ABC-7", reader).status_code == 200
    assert ask(servers, gateway, "GET", "/orders/my%20order.v2", reader).status_code == 200
    assert ask(servers, gateway, "GET", "/orders/7.json", reader).status_code == 200
    assert ask(servers, gateway, "GET", "/public/app.min.js").status_code == 200
    assert ask(servers, gateway, "GET", "/ordersx.json", reader).status_code == 200


@pytest.mark.parametrize("gateway", FLAVOURS)
def test_head_follows_the_get_rule(
    servers: dict[str, ASGIServer], issuer: LocalIssuer, gateway: str
) -> None:
    nobody = issuer.mint(scopes=[])
    reader = issuer.mint(scopes=["orders:read"])
    head = ask(servers, gateway, "HEAD", "/orders/7", nobody)
    assert head.status_code == 403
    assert ask(servers, gateway, "HEAD", "/orders/7", reader).status_code == 200


@pytest.mark.parametrize("gateway", FLAVOURS)
@pytest.mark.parametrize("method", ["OPTIONS", "PROPFIND", "TRACE", "CONNECT", "X-CUSTOM"])
def test_a_method_no_rule_of_the_prefix_names_is_refused_not_weakened(
    servers: dict[str, ASGIServer], issuer: LocalIssuer, gateway: str, method: str
) -> None:
    everything = issuer.mint(scopes=["orders:read", "w"])
    response = ask(servers, gateway, method, "/orders/7", everything)
    assert reason(response) == (403, "method_not_allowed")
    assert "X-Auth-Subject" not in response.headers


@pytest.mark.parametrize("gateway", FLAVOURS)
def test_a_rule_without_methods_catches_the_other_methods_of_its_prefix(
    servers: dict[str, ASGIServer], issuer: LocalIssuer, gateway: str
) -> None:
    reader = issuer.mint(scopes=["reports:read"])
    admin = issuer.mint(scopes=["admin"])
    assert ask(servers, gateway, "GET", "/reports/1", reader).status_code == 200
    patch = ask(servers, gateway, "PATCH", "/reports/1", reader)
    assert patch.status_code == 403
    assert 'scope="admin"' in patch.headers["WWW-Authenticate"]
    assert ask(servers, gateway, "PATCH", "/reports/1", admin).status_code == 200


@pytest.mark.parametrize("gateway", FLAVOURS)
@pytest.mark.parametrize("query", ["%61ccess_token=", "x=1;access_token=", "access.token="])
def test_a_query_token_spelled_another_way_is_still_refused(
    servers: dict[str, ASGIServer], issuer: LocalIssuer, gateway: str, query: str
) -> None:
    """An upstream that decodes names (or splits on ';', or is PHP) would read a token there:
    on an anonymous route it would reach the upstream unchecked."""
    forged = issuer.mint(subject="admin")[:-4] + "AAAA"
    response = ask(servers, gateway, "GET", f"/public/x?{query}{forged}")
    assert reason(response) == (400, "token_in_query")


# -- 3. identity headers are data, not text ----------------------------------------------

HARD_VALUES: list[dict[str, Any]] = [
    {"subject": "line\r\nX-Admin: yes", "scopes": ["a\r\nb", "c\nd"]},
    {"subject": "\u65e5\u672c\u8a9e", "scopes": ["\u0441\u043a\u043e\u0443\u043f", "\u2603"]},
    {"subject": "\u00e9mile", "name": "%C3%A9mile", "groups": ["users,admins"]},
    {"subject": " admin ", "name": "admin", "groups": ["users", "admins"]},
    {"subject": "nul\x00del\x7f", "scopes": ["tab\there", "nbsp\u00a0here"]},
    {"subject": "\U0001f600", "groups": [" x ", "y%2Cz", "y,z"]},
]


@pytest.mark.parametrize("gateway", FLAVOURS)
@pytest.mark.parametrize("values", HARD_VALUES, ids=range(len(HARD_VALUES)))
def test_hard_claim_values_become_decodable_headers_never_errors(
    servers: dict[str, ASGIServer],
    issuer: LocalIssuer,
    gateway: str,
    values: dict[str, Any],
) -> None:
    claims = {key: value for key, value in values.items() if key not in ("subject", "scopes")}
    scopes = values.get("scopes", [])
    token = issuer.mint(subject=values["subject"], scopes=scopes, **claims)
    response = ask(servers, gateway, "GET", "/public/x", token)
    assert response.status_code == 200, response.text
    assert decode_text(response.headers["X-Auth-Subject"]) == values["subject"]
    assert sorted(decode_list(response.headers["X-Auth-Scopes"], " ")) == sorted(scopes)
    if "name" in claims:
        assert decode_text(response.headers["X-Auth-Name"]) == claims["name"]
    if "groups" in claims:
        assert decode_list(response.headers["X-Auth-Groups"]) == claims["groups"]


def test_distinct_claims_reach_the_upstream_as_distinct_headers(
    servers: dict[str, ASGIServer], issuer: LocalIssuer
) -> None:
    def headers(**claims: Any) -> dict[str, str]:
        response = ask(servers, "nginx", "GET", "/public/x", issuer.mint(**claims))
        assert response.status_code == 200
        return dict(response.headers)

    assert (
        headers(subject="%C3%A9mile")["x-auth-subject"]
        != headers(subject="\u00e9mile")["x-auth-subject"]
    )
    assert (
        headers(subject=" admin ")["x-auth-subject"] != headers(subject="admin")["x-auth-subject"]
    )
    assert (
        headers(groups=["users,admins"])["x-auth-groups"]
        != headers(groups=["users", "admins"])["x-auth-groups"]
    )


def test_a_refusal_carries_its_body_in_a_header_for_nginx_only(
    servers: dict[str, ASGIServer],
) -> None:
    nginx = ask(servers, "nginx", "GET", "/orders")
    assert json.loads(nginx.headers["X-Auth-Error-Body"]) == nginx.json()
    for gateway in ("traefik", "envoy"):
        assert "X-Auth-Error-Body" not in ask(servers, gateway, "GET", "/orders").headers


def test_route_answers_are_remembered_within_a_bound() -> None:
    """A client sending ever new paths cannot grow the route memo past its bound."""
    from jwkguard._forward_auth._app import _MEMO_ENTRIES, BoundedMemo

    memo: BoundedMemo[str, int] = BoundedMemo(_MEMO_ENTRIES)
    for number in range(_MEMO_ENTRIES * 3):
        memo.remember(f"/path/{number}", number)
        assert len(memo._entries) <= _MEMO_ENTRIES
    assert memo.get(f"/path/{_MEMO_ENTRIES * 3 - 1}") == _MEMO_ENTRIES * 3 - 1


# -- 4. the running server: its peer, its connections --------------------------------------


def test_the_served_process_judges_its_tcp_peer_never_a_forwarded_address(
    issuer: LocalIssuer, tmp_path: Path
) -> None:
    """uvicorn trusts X-Forwarded-For from loopback by default; `jwkguard serve` must not."""
    port = free_port()
    config = forward_auth_toml(
        issuer=issuer.url,
        audience=issuer.audience,
        port=port,
        server_extra='trusted_proxies = ["192.0.2.7"]',
    )
    token = issuer.mint(scopes=["orders:read", "admin"])
    spoofed = [
        ("X-Forwarded-For", "192.0.2.7"),
        ("X-Real-IP", "192.0.2.7"),
        ("Forwarded", "for=192.0.2.7"),
    ]
    described = [("X-Original-URI", "/orders"), ("X-Original-Method", "GET")]
    with jwkguard_serve(config, tmp_path, port):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.putrequest("GET", "/auth", skip_accept_encoding=True)
            for name, value in [
                *described,
                ("X-Forwarded-Host", HOST),
                ("Authorization", f"Bearer {token}"),
                *spoofed,
            ]:
                connection.putheader(name, value)
            connection.endheaders()
            answer = connection.getresponse()
            body = json.loads(answer.read())
        finally:
            connection.close()
    assert (answer.status, body["reason"]) == (403, "untrusted_peer")
    assert answer.getheader("X-Auth-Subject") is None


def test_pipelined_questions_on_one_connection_get_their_own_answers(
    servers: dict[str, ASGIServer], issuer: LocalIssuer
) -> None:
    """A gateway's keep-alive connection carries many clients: no identity leaks across."""

    def question(target: str, token: str | None, last: bool = False) -> bytes:
        lines = [
            "GET /auth HTTP/1.1",
            "Host: jwkguard",
            f"X-Original-URI: {target}",
            "X-Original-Method: GET",
            f"X-Forwarded-Host: {HOST}",
            *([f"Authorization: Bearer {token}"] if token else []),
            *(["Connection: close"] if last else []),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    alice = issuer.mint(subject="alice", scopes=["orders:read"], name="Alice")
    bob = issuer.mint(subject="bob", scopes=[])
    sent = (
        question("/orders/1", alice)
        + question("/public/x", None)
        + question("/orders/1", bob)
        + question("/public/x", bob)
        + question("/orders/1", alice, last=True)
    )
    with socket.create_connection(("127.0.0.1", servers["nginx"].port), timeout=10) as sock:
        sock.sendall(sent)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    answers = [part for part in received.split(b"HTTP/1.1 ")[1:]]
    statuses = [int(answer[:3]) for answer in answers]
    subjects = [
        next(
            (
                line.split(b":", 1)[1].strip().decode()
                for line in answer.split(b"\r\n")
                if line.lower().startswith(b"x-auth-subject:")
            ),
            None,
        )
        for answer in answers
    ]
    assert statuses == [200, 200, 403, 200, 200]
    assert subjects == ["alice", None, None, "bob", "alice"]


def test_long_targets_cost_memory_only_while_asked(issuer: LocalIssuer) -> None:
    """The route memo holds 4096 answers: a client sending ever new 60 KB targets (Envoy takes
    60 KB of headers) must not make it hold 4096 of those."""
    from jwkguard._forward_auth._app import _MEMO_ENTRIES, _MEMO_TARGET

    app = ForwardAuthApp(parse_config(document(issuer, "nginx")))
    for number in range(64):
        long_target = f"/public/{number}/" + "a" * 60_000
        assert app.route_for(HOST, long_target, "GET")[0] is not None
        assert app.route_for(HOST, long_target + "?x", "GET")[2] == "x"
        with pytest.raises(AmbiguousPath):
            app.route_for(HOST, long_target + "/..", "GET")
    assert app.route_for(HOST, "/public/short", "GET")[1] == "/public/short"
    assert [target for _, target, _ in app._routes_seen._entries] == ["/public/short"]
    assert _MEMO_ENTRIES * _MEMO_TARGET <= 16 * 1024 * 1024


def test_a_rule_naming_the_suffixed_segment_decides_it() -> None:
    """/openapi.json made public on purpose stays public beside a stricter /openapi; any other
    suffix of /openapi is refused, as Rails would serve it from /openapi."""
    from jwkguard._forward_auth import RouteRule, RouteTable, normalise_path

    table = RouteTable(
        [
            RouteRule(path="/openapi", scopes=frozenset({"admin"})),
            RouteRule(path="/openapi.json", anonymous=True),
        ]
    )
    chosen = table.resolve(HOST, normalise_path("/openapi.json"), "GET")
    assert chosen is table.routes[0]
    assert chosen.anonymous
    with pytest.raises(AmbiguousPath, match="suffix"):
        table.resolve(HOST, normalise_path("/openapi.yaml"), "GET")
    with pytest.raises(AmbiguousPath, match="suffix"):
        table.resolve(HOST, normalise_path("/OpenAPI.yaml"), "GET")
    assert table.resolve(HOST, normalise_path("/openapi/v1.json"), "GET") == table.routes[1]
