"""The forward-auth app in process: decisions, headers, route rules, path tricks, health."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from jwkguard._forward_auth import ForwardAuthApp, parse_config
from jwkguard.metrics import PrometheusMetrics
from jwkguard.testing import LocalIssuer, sign_compact

from .conftest import inline_validator

PEER = ("127.0.0.1", 50000)  # the gateway, on loopback (the default trusted_proxies)


def config_document(issuer: LocalIssuer, **server: Any) -> dict[str, Any]:
    return {
        "server": {
            "gateway": "nginx",
            "claim_headers": {"X-Auth-Client": "client_id", "X-Auth-Tenant": "org.tenant"},
            **server,
        },
        "validator": inline_validator(issuer),
        "routes": [
            {"path": "/public", "anonymous": True},
            {"path": "/orders", "methods": ["GET"], "scopes": ["orders:read"]},
            {"path": "/orders", "methods": ["POST"], "scopes": ["orders:write"]},
            {"path": "/admin", "scopes": ["admin"]},
            {"host": "admin.example.com", "path": "/", "scopes": ["admin"]},
        ],
    }


@pytest.fixture
def app(issuer: LocalIssuer) -> ForwardAuthApp:
    registry = CollectorRegistry()
    config = parse_config(config_document(issuer))
    return ForwardAuthApp(config, metrics=PrometheusMetrics(registry=registry))


@pytest.fixture
def client(app: ForwardAuthApp) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://127.0.0.1", client=PEER) as test_client:
        yield test_client


def ask(
    client: TestClient,
    uri: str,
    token: str | None = None,
    *,
    method: str = "GET",
    host: str = "api.example.com",
    **headers: str,
) -> Any:
    sent = {"X-Original-URI": uri, "X-Original-Method": method, "X-Forwarded-Host": host}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return client.get("/auth", headers=sent)


def test_valid_token_gets_200_with_subject_scopes_and_claim_headers(
    client: TestClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint(scopes=["orders:read", "profile"], client_id="web", org={"tenant": "acme"})
    response = ask(client, "/orders/7?expand=1", token)
    assert response.status_code == 200
    assert response.headers["X-Auth-Subject"] == "user-123"
    assert response.headers["X-Auth-Scopes"] == "orders:read profile"
    assert response.headers["X-Auth-Client"] == "web"
    assert response.headers["X-Auth-Tenant"] == "acme"
    assert response.headers["Cache-Control"] == "no-store"


def test_missing_token_gets_a_bare_bearer_challenge(client: TestClient) -> None:
    response = ask(client, "/orders")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["reason"] == "missing_token"


def test_expired_token_gets_invalid_token(client: TestClient, issuer: LocalIssuer) -> None:
    token = issuer.mint(scopes=["orders:read"], now=time.time() - 3600, lifetime=60)
    response = ask(client, "/orders", token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.json()["reason"] == "expired"


def test_alg_none_token_is_refused(client: TestClient, issuer: LocalIssuer) -> None:
    payload = {"iss": issuer.url, "aud": issuer.audience, "sub": "x", "exp": time.time() + 60}
    forged = sign_compact({"alg": "none", "kid": issuer.active_key.kid}, payload)
    response = ask(client, "/orders", forged)
    assert response.status_code == 401
    assert response.json()["reason"] == "algorithm_not_allowed"


def test_missing_scope_gets_403_naming_the_scope(client: TestClient, issuer: LocalIssuer) -> None:
    token = issuer.mint(scopes=["orders:read"])
    response = ask(client, "/orders", token, method="POST")
    assert response.status_code == 403
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="orders:write"' in challenge


def test_anonymous_route_passes_without_token_and_without_identity(client: TestClient) -> None:
    response = ask(client, "/public/docs")
    assert response.status_code == 200
    assert "X-Auth-Subject" not in response.headers


def test_anonymous_route_still_refuses_a_bad_token(client: TestClient, issuer: LocalIssuer) -> None:
    token = issuer.mint(audience="https://other.example.com")
    response = ask(client, "/public", token)
    assert response.status_code == 401
    assert response.json()["reason"] == "audience_mismatch"


def test_anonymous_route_passes_identity_of_a_valid_token(
    client: TestClient, issuer: LocalIssuer
) -> None:
    response = ask(client, "/public", issuer.mint(subject="alice"))
    assert response.status_code == 200
    assert response.headers["X-Auth-Subject"] == "alice"


def test_path_prefix_matches_whole_segments_only(client: TestClient, issuer: LocalIssuer) -> None:
    token = issuer.mint(scopes=[])
    assert ask(client, "/admin/users", token).status_code == 403
    assert ask(client, "/administrators", token).status_code == 200
    assert ask(client, "/publicity").status_code == 401


def test_host_rule_wins_over_path_rules(client: TestClient, issuer: LocalIssuer) -> None:
    token = issuer.mint(scopes=[])
    assert ask(client, "/public", token, host="ADMIN.example.com:8443").status_code == 403
    assert ask(client, "/public", token, host="api.example.com").status_code == 200


@pytest.mark.parametrize(
    "uri",
    [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public%2F..%2Fadmin",
        "/public/%5C..%5Cadmin",
        "/public/%00",
        "/public/%zz",
        "/public\\..\\admin",
        "admin",
    ],
)
def test_ambiguous_paths_are_refused_not_guessed(client: TestClient, uri: str) -> None:
    response = ask(client, uri)
    assert response.status_code == 400
    assert response.json()["reason"] == "ambiguous_path"


def test_encoded_and_doubled_slashes_cannot_dodge_a_rule(
    client: TestClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint(scopes=[])
    # "//admin" unmerged is no "/admin": the rule would depend on the reading, so it is refused.
    doubled = ask(client, "//admin", token)
    assert (doubled.status_code, doubled.json()["reason"]) == (400, "ambiguous_path")
    assert ask(client, "/%61dmin", token).status_code == 403
    assert ask(client, "/admin/", token).status_code == 403
    assert ask(client, "/admin//users", token).status_code == 403


def test_unmatched_requests_need_a_valid_token_by_default(
    client: TestClient, issuer: LocalIssuer
) -> None:
    assert ask(client, "/elsewhere").status_code == 401
    assert ask(client, "/elsewhere", issuer.mint()).status_code == 200


def test_unmatched_requests_can_be_denied(issuer: LocalIssuer) -> None:
    config = parse_config(config_document(issuer, unmatched="deny", metrics=False))
    with TestClient(ForwardAuthApp(config), client=PEER) as client:
        response = ask(client, "/elsewhere", issuer.mint())
        assert response.status_code == 403
        assert response.json()["reason"] == "no_route"
        assert ask(client, "/public").status_code == 200


def test_traefik_forwarded_headers_describe_the_request(issuer: LocalIssuer) -> None:
    config = parse_config(config_document(issuer, gateway="traefik", metrics=False))
    token = issuer.mint(scopes=["orders:read"])
    headers = {
        "X-Forwarded-Uri": "/orders",
        "X-Forwarded-Method": "POST",
        "X-Forwarded-Host": "api.example.com",
        "Authorization": f"Bearer {token}",
    }
    with TestClient(ForwardAuthApp(config), client=PEER) as client:
        assert client.get("/auth", headers=headers).status_code == 403
        headers["X-Forwarded-Method"] = "GET"
        assert client.get("/auth", headers=headers).status_code == 200
        assert client.get("/envoy/orders", headers=headers).status_code == 404


def test_envoy_endpoint_reads_method_path_and_host_as_sent(issuer: LocalIssuer) -> None:
    config = parse_config(config_document(issuer, gateway="envoy", metrics=False))
    token = issuer.mint(scopes=["orders:read"])
    headers = {"Authorization": f"Bearer {token}", "Host": "api.example.com"}
    with TestClient(ForwardAuthApp(config), client=PEER) as client:
        assert client.get("/envoy/orders/1?x=1", headers=headers).status_code == 200
        assert client.post("/envoy/orders", headers=headers).status_code == 403
        assert client.delete("/envoy/admin", headers=headers).status_code == 403
        assert client.get("/envoy/public/%2e%2e/admin", headers=headers).status_code == 400
        assert client.get("/auth", headers=headers).status_code == 404


def test_request_without_original_uri_is_a_bad_request(client: TestClient) -> None:
    response = client.get("/auth")
    assert response.status_code == 400
    assert response.json()["reason"] == "missing_original_uri"


def test_two_authorization_headers_are_a_bad_request(
    client: TestClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint()
    response = client.get(
        "/auth",
        headers=[
            ("X-Original-URI", "/orders"),
            ("X-Original-Method", "GET"),
            ("X-Forwarded-Host", "api.example.com"),
            ("Authorization", f"Bearer {token}"),
            ("Authorization", f"Bearer {token}"),
        ],
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "original" not in response.json()["reason"]


def test_query_string_token_is_refused_unless_enabled(issuer: LocalIssuer) -> None:
    token = issuer.mint(scopes=["orders:read"])
    for allowed, status in ((False, 400), (True, 200)):
        config = parse_config(
            config_document(issuer, allow_query_token=allowed, metrics=False, audit=False)
        )
        with TestClient(ForwardAuthApp(config), client=PEER) as client:
            response = ask(client, f"/orders?access_token={token}")
            assert response.status_code == status


def test_claim_values_cannot_inject_headers(client: TestClient, issuer: LocalIssuer) -> None:
    token = issuer.mint(
        subject="evil\r\nX-Admin: yes", client_id="cl\u00e9", org={"tenant": {"nested": 1}}
    )
    response = ask(client, "/elsewhere/x", token, method="PATCH")
    assert response.status_code == 200
    assert response.headers["X-Auth-Subject"] == "evil%0D%0AX-Admin:%20yes"
    assert "X-Admin" not in response.headers
    assert response.headers["X-Auth-Client"] == "cl%C3%A9"
    assert "X-Auth-Tenant" not in response.headers


def test_healthz_is_ready_with_keys_and_lists_them(client: TestClient, issuer: LocalIssuer) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["issuers"][0]["kids"] == [issuer.active_key.kid]
    assert body["issuers"][0]["thumbprints"] == [issuer.active_key.thumbprint]


def test_metrics_count_decisions_and_validations(client: TestClient, issuer: LocalIssuer) -> None:
    ask(client, "/orders", issuer.mint(scopes=["orders:read"]))
    ask(client, "/orders", issuer.mint(now=time.time() - 3600, lifetime=60))
    ask(client, "/orders")
    text = client.get("/metrics").text
    series = f'jwkguard_validations_total{{issuer="{issuer.url}"'
    assert f'{series},outcome="valid",reason="ok"}} 1.0' in text
    assert f'{series},outcome="invalid",reason="expired"}} 1.0' in text
    assert 'jwkguard_forward_auth_responses_total{status="401"} 2.0' in text
    assert f'jwkguard_keys{{issuer="{issuer.url}"}} 1.0' in text


def test_metrics_endpoint_is_404_when_disabled(issuer: LocalIssuer) -> None:
    config = parse_config(config_document(issuer, metrics=False))
    with TestClient(ForwardAuthApp(config), client=PEER) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/nothing").status_code == 404


def test_identity_headers_are_kept_per_cached_token(issuer: LocalIssuer) -> None:
    """With the token cache, every hit of a token builds new claims from one cache entry: the
    headers are encoded once per entry and each token keeps its own."""
    document = config_document(issuer)
    document["validator"]["token_cache"] = True
    app = ForwardAuthApp(
        parse_config(document), metrics=PrometheusMetrics(registry=CollectorRegistry())
    )
    first = issuer.mint(scopes=["orders:read"], client_id="web", subject="alice")
    second = issuer.mint(scopes=["orders:read"], client_id="cli", subject="bob")
    with TestClient(app, base_url="http://127.0.0.1", client=PEER) as client:
        answers = [ask(client, "/orders", token) for token in (first, second, first, second)]
    assert [a.status_code for a in answers] == [200] * 4
    assert [a.headers["X-Auth-Subject"] for a in answers] == ["alice", "bob", "alice", "bob"]
    assert [a.headers["X-Auth-Client"] for a in answers] == ["web", "cli", "web", "cli"]
    memo = app._identities._entries
    assert len(memo) == 2  # one per cache entry (the first sights are full validations)
    cache = app.validator.token_cache
    assert cache is not None
    assert {id(cache.get(first)), id(cache.get(second))} == set(memo)
