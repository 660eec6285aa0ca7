"""The Flask adapter with sender-constrained tokens: DPoP (RFC 9449), certificate binding
(RFC 8705) from the WSGI environ or a trusted proxy, and hybrid introspection (RFC 7662)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.middleware.proxy_fix import ProxyFix

from jwkguard import ConfigurationError
from jwkguard.sender import DPoPNonces, certificate_thumbprint
from jwkguard.testing import (
    CertificateAuthority,
    IntrospectionEndpoint,
    LocalIssuer,
    SigningKey,
    generate_key,
    make_dpop_proof,
)
from jwkguard_flask import JWKGuard, current_claims

from ..helpers import bearer
from ..sender.kit import (
    BROKEN_PROOFS,
    UNENFORCEABLE_NAMES,
    BrokenProof,
    TLSFiles,
    WSGITLSServer,
    assert_cnf_refusal,
    assert_dpop_refusal,
    dpop_challenge,
    dpop_headers,
    unenforceable_binding,
)
from .conftest import static_settings

BASE = "http://localhost"
NONCE_SECRET = "0123456789abcdef0123456789abcdef"
PROXY: dict[str, Any] = {
    "JWKGUARD_CLIENT_CERT_HEADER": "X-SSL-Client-Cert",
    "JWKGUARD_TRUSTED_PROXIES": ["10.1.2.3"],
}


@pytest.fixture(scope="module")
def proof_key() -> SigningKey:
    return generate_key("ES256")


def make_app(issuer: LocalIssuer, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(static_settings(issuer, **config), TESTING=True)
    guard = JWKGuard(app)

    @app.route("/orders", methods=["GET", "POST"])
    @guard.require
    def orders() -> dict[str, Any]:
        return {"sub": current_claims.subject}

    @app.get("/strict")
    @guard.require(dpop=True)
    def strict() -> dict[str, Any]:
        return {"sub": current_claims.subject}

    @app.get("/astrict")
    @guard.require(dpop=True)
    async def astrict() -> dict[str, Any]:
        return {"sub": current_claims.subject}

    @app.get("/payments")
    @guard.require(certificate=True)
    def payments() -> dict[str, Any]:
        return {"sub": current_claims.subject}

    @app.post("/transfer")
    @guard.require(introspect=True, scopes=["payments:write"])
    def transfer() -> dict[str, Any]:
        return {"sub": current_claims.subject}

    return app


@pytest.fixture
def client(issuer: LocalIssuer) -> FlaskClient:
    return make_app(issuer, JWKGUARD_DPOP=True).test_client()


def bound(issuer: LocalIssuer, key: SigningKey, **claims: Any) -> str:
    return issuer.mint(cnf={"jkt": key.thumbprint}, **claims)


def proof(key: SigningKey, token: str, path: str, method: str = "GET", **extra: Any) -> str:
    return make_dpop_proof(key, method=method, url=BASE + path, access_token=token, **extra)


def refused(response: Any, reason: str, error: str = "invalid_dpop_proof") -> None:
    assert_dpop_refusal(
        response.status_code, response.headers, response.get_json(), reason, error=error
    )


@pytest.mark.parametrize("name", UNENFORCEABLE_NAMES)
def test_a_binding_that_cannot_be_enforced_is_refused_not_read_as_bearer(
    issuer: LocalIssuer, proof_key: SigningKey, name: str
) -> None:
    """A ``cnf`` we cannot check is 401 ``cnf_unsupported``, with or without a valid proof."""
    case = unenforceable_binding(proof_key, name)
    token = issuer.mint(cnf=case.cnf)
    plain, dpop = make_app(issuer).test_client(), make_app(issuer, JWKGUARD_DPOP=True).test_client()
    for client, paths in ((plain, ["/orders"]), (dpop, ["/orders", "/strict", "/astrict"])):
        for path in paths:
            for headers in case.presentations(
                proof_key, method="GET", url=BASE + path, token=token
            ):
                response = client.get(path, headers=headers)
                assert_cnf_refusal(response.status_code, response.headers, response.get_json())


def test_a_bound_token_with_its_proof_is_accepted_once(
    client: FlaskClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = bound(issuer, proof_key)
    headers = dpop_headers(token, proof(proof_key, token, "/orders"))
    response = client.get("/orders", headers=headers)
    assert response.status_code == 200, response.data
    assert response.get_json() == {"sub": "user-123"}
    refused(client.get("/orders", headers=headers), "dpop_replayed")


def test_post_needs_a_proof_for_post(
    client: FlaskClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = bound(issuer, proof_key)
    wrong = dpop_headers(token, proof(proof_key, token, "/orders"))
    refused(client.post("/orders", headers=wrong), "dpop_proof_invalid")
    right = dpop_headers(token, proof(proof_key, token, "/orders", method="POST"))
    assert client.post("/orders", headers=right).status_code == 200


@pytest.mark.parametrize("case", BROKEN_PROOFS, ids=lambda case: case.name)
def test_a_proof_for_another_request_time_token_or_key_is_refused(
    client: FlaskClient, issuer: LocalIssuer, proof_key: SigningKey, case: BrokenProof
) -> None:
    token = bound(issuer, proof_key)
    broken = case.make(proof_key, method="GET", url=BASE + "/orders", token=token)
    refused(client.get("/orders", headers=dpop_headers(token, broken)), case.reason)


def test_a_bound_token_presented_as_bearer_is_refused(
    client: FlaskClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = bound(issuer, proof_key)
    headers = {**bearer(token), "DPoP": proof(proof_key, token, "/orders")}
    refused(client.get("/orders", headers=headers), "dpop_required")


def test_the_dpop_scheme_with_an_unbound_token_is_refused(
    client: FlaskClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = issuer.mint()
    refused(
        client.get("/orders", headers=dpop_headers(token, proof(proof_key, token, "/orders"))),
        "dpop_not_bound",
    )


def test_a_missing_proof_is_refused(
    client: FlaskClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = bound(issuer, proof_key)
    refused(client.get("/orders", headers=dpop_headers(token, None)), "dpop_proof_missing")


def test_an_expired_token_with_the_dpop_scheme_gets_a_dpop_challenge(
    client: FlaskClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = bound(issuer, proof_key, now=time.time() - 900)
    response = client.get("/orders", headers=dpop_headers(token, proof(proof_key, token, "/")))
    assert response.status_code == 401
    assert response.get_json()["reason"] == "expired"
    assert response.headers["WWW-Authenticate"].startswith(dpop_challenge("invalid_token"))


@pytest.mark.parametrize("path", ["/strict", "/astrict"])
def test_a_view_requiring_dpop_challenges_with_dpop_and_refuses_bearer(
    client: FlaskClient, issuer: LocalIssuer, proof_key: SigningKey, path: str
) -> None:
    missing = client.get(path)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == dpop_challenge()
    refused(client.get(path, headers=bearer(issuer.mint())), "dpop_required")
    assert client.get("/orders", headers=bearer(issuer.mint())).status_code == 200
    token = bound(issuer, proof_key)
    ok = client.get(path, headers=dpop_headers(token, proof(proof_key, token, path)))
    assert ok.status_code == 200, ok.data


def test_dpop_can_be_required_for_every_token_of_an_issuer(
    issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    app = make_app(issuer, JWKGUARD_DPOP=True, JWKGUARD_REQUIRE_DPOP_ISSUERS=[issuer.url])
    client = app.test_client()
    refused(client.get("/orders", headers=bearer(issuer.mint())), "dpop_required")
    token = bound(issuer, proof_key)
    headers = dpop_headers(token, proof(proof_key, token, "/orders"))
    assert client.get("/orders", headers=headers).status_code == 200


def test_server_nonces_come_back_in_the_dpop_nonce_header(
    issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    client = make_app(issuer, JWKGUARD_DPOP={"nonce_secret": NONCE_SECRET}).test_client()
    token = bound(issuer, proof_key)
    first = client.get("/orders", headers=dpop_headers(token, proof(proof_key, token, "/orders")))
    refused(first, "dpop_nonce_required", error="use_dpop_nonce")
    nonce = first.headers["DPoP-Nonce"]
    assert nonce == DPoPNonces(NONCE_SECRET.encode()).current(time.time())
    retry = proof(proof_key, token, "/orders", nonce=nonce)
    assert client.get("/orders", headers=dpop_headers(token, retry)).status_code == 200


def test_without_dpop_config_a_bound_token_is_refused(
    issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    client = make_app(issuer).test_client()
    token = bound(issuer, proof_key)
    response = client.get("/orders", headers=dpop_headers(token, proof(proof_key, token, "/o")))
    assert response.status_code == 401
    assert response.get_json()["reason"] == "dpop_not_supported"


@pytest.mark.parametrize(
    "config",
    [
        {"JWKGUARD_DPOP": {"algorithms": ["HS256"]}},
        {"JWKGUARD_DPOP": {"unknown": 1}},
        {"JWKGUARD_REQUIRE_DPOP": True},
        {"JWKGUARD_CLIENT_CERT_HEADER": "X-SSL-Client-Cert"},
        {"JWKGUARD_TRUSTED_PROXIES": "10.0.0.0/8"},
        {"JWKGUARD_INTROSPECTION": {"endpoint": "https://id.example.com/introspect"}},
    ],
)
def test_bad_sender_config_stops_init_app(issuer: LocalIssuer, config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=r"JWKGUARD_\* config"):
        make_app(issuer, **config)


# -- certificate-bound tokens ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


def test_a_certificate_from_the_wsgi_environ_satisfies_the_binding(
    issuer: LocalIssuer, ca: CertificateAuthority
) -> None:
    mine, other = ca.issue("client-a"), ca.issue("client-b")
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(mine.der)})
    client = make_app(issuer).test_client()
    ok = client.get(
        "/payments",
        headers=bearer(token),
        environ_base={"SSL_CLIENT_CERT": mine.certificate_pem.decode()},
    )
    assert ok.status_code == 200
    wrong = client.get(
        "/payments",
        headers=bearer(token),
        environ_base={"SSL_CLIENT_CERT": other.certificate_pem.decode()},
    )
    assert wrong.get_json()["reason"] == "certificate_mismatch"
    unbound = client.get(
        "/payments",
        headers=bearer(issuer.mint()),
        environ_base={"SSL_CLIENT_CERT": mine.certificate_pem.decode()},
    )
    assert unbound.status_code == 401
    assert unbound.get_json()["reason"] == "certificate_binding_required"


def test_a_proxy_header_counts_only_from_a_trusted_proxy(
    issuer: LocalIssuer, ca: CertificateAuthority
) -> None:
    mine = ca.issue("client-a")
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(mine.der)})
    headers = {**bearer(token), "X-SSL-Client-Cert": quote(mine.certificate_pem.decode())}
    app = make_app(
        issuer,
        JWKGUARD_CLIENT_CERT_HEADER="X-SSL-Client-Cert",
        JWKGUARD_TRUSTED_PROXIES=["10.1.2.3"],
    )
    client = app.test_client()
    trusted = client.get("/orders", headers=headers, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert trusted.status_code == 200, trusted.data
    untrusted = client.get("/orders", headers=headers, environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert untrusted.status_code == 401
    assert untrusted.get_json()["reason"] == "certificate_missing"


def test_behind_proxy_fix_the_proxy_is_still_recognised_by_its_own_address(
    issuer: LocalIssuer, ca: CertificateAuthority
) -> None:
    mine = ca.issue("client-a")
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(mine.der)})
    app = make_app(
        issuer,
        JWKGUARD_CLIENT_CERT_HEADER="X-SSL-Client-Cert",
        JWKGUARD_TRUSTED_PROXIES=["10.1.2.3"],
    )
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    headers = {
        **bearer(token),
        "X-SSL-Client-Cert": quote(mine.certificate_pem.decode()),
        "X-Forwarded-For": "198.51.100.7",
    }
    response = app.test_client().get(
        "/orders", headers=headers, environ_base={"REMOTE_ADDR": "10.1.2.3"}
    )
    assert response.status_code == 200, response.data


@pytest.mark.slow
def test_a_real_mtls_handshake_under_werkzeug_binds_the_token(
    issuer: LocalIssuer, tmp_path: Path
) -> None:
    files = TLSFiles.create(tmp_path)
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(files.client_pem)})
    app = make_app(issuer)
    with WSGITLSServer(app, files.server_context()) as server:
        with httpx.Client(verify=files.client_context(files.client), timeout=5) as client:
            ok = client.get(f"{server.url}/payments", headers=bearer(token))
            assert ok.status_code == 200, ok.text
        with httpx.Client(verify=files.client_context(files.other_client), timeout=5) as client:
            wrong = client.get(f"{server.url}/payments", headers=bearer(token))
            assert wrong.status_code == 401
            assert wrong.json()["reason"] == "certificate_mismatch"
        with (
            httpx.Client(verify=files.client_context(), timeout=5) as client,
            pytest.raises(httpx.HTTPError),
        ):
            client.get(f"{server.url}/payments", headers=bearer(token))


# -- hybrid introspection --------------------------------------------------------------------


@pytest.fixture
def introspection(issuer: LocalIssuer) -> Iterator[IntrospectionEndpoint]:
    endpoint = issuer.enable_introspection()
    yield endpoint
    issuer.heal()


@pytest.fixture
def hybrid(issuer: LocalIssuer, introspection: IntrospectionEndpoint) -> Iterator[Flask]:
    app = make_app(
        issuer,
        JWKGUARD_INTROSPECTION={
            "endpoint": introspection.url,
            "client_id": introspection.client_id,
            "client_secret": introspection.client_secret,
            "timeout": 2,
            "max_cache_ttl": 0.001,
            "inactive_ttl": 0.001,
        },
    )
    yield app
    introspector = app.extensions["jwkguard"].sender.introspector
    introspector.close()


def test_a_view_marked_introspect_asks_the_authorization_server(
    hybrid: Flask, issuer: LocalIssuer, introspection: IntrospectionEndpoint
) -> None:
    client = hybrid.test_client()
    token = issuer.mint(scopes=["payments:write"])
    before = issuer.requests["/introspect"]
    assert client.post("/transfer", headers=bearer(token)).status_code == 200
    assert issuer.requests["/introspect"] == before + 1
    assert client.get("/orders", headers=bearer(token)).status_code == 200
    assert issuer.requests["/introspect"] == before + 1, "only marked views introspect"
    introspection.revoked.add(token)
    time.sleep(0.01)
    response = client.post("/transfer", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["reason"] == "inactive"
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer realm="api", error="invalid_token"'
    )


def test_an_unreachable_endpoint_gives_503_when_fail_closed(
    hybrid: Flask, issuer: LocalIssuer
) -> None:
    issuer.fail_with(500, paths={"/introspect"})
    response = hybrid.test_client().post(
        "/transfer", headers=bearer(issuer.mint(scopes=["payments:write"]))
    )
    assert response.status_code == 503
    assert response.get_json()["reason"] == "introspection_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def test_protect_can_demand_dpop_for_a_whole_blueprint(
    issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    from flask import Blueprint

    app = Flask(__name__)
    app.config.update(static_settings(issuer, JWKGUARD_DPOP=True), TESTING=True)
    guard = JWKGuard(app)
    payments = guard.protect(Blueprint("payments", __name__), dpop=True)

    @payments.get("/payments/<int:number>")
    def payment(number: int) -> dict[str, Any]:
        return {"number": number, "sub": current_claims.subject}

    app.register_blueprint(payments)
    client = app.test_client()
    assert client.get("/payments/1").headers["WWW-Authenticate"] == dpop_challenge()
    refused(client.get("/payments/1", headers=bearer(issuer.mint())), "dpop_required")
    token = bound(issuer, proof_key)
    ok = client.get(
        "/payments/1", headers=dpop_headers(token, proof(proof_key, token, "/payments/1"))
    )
    assert ok.get_json() == {"number": 1, "sub": "user-123"}
