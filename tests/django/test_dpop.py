"""The Django adapter with sender-constrained tokens: DPoP (RFC 9449), certificate binding
(RFC 8705) from the WSGI environ or a trusted proxy, and hybrid introspection (RFC 7662).

Every test runs through the sync middleware path (WSGI) and the async one (ASGI)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from django.test import override_settings

from jwkguard.sender import DPoPNonces, certificate_thumbprint
from jwkguard.testing import (
    CertificateAuthority,
    IntrospectionEndpoint,
    LocalIssuer,
    SigningKey,
    generate_key,
    make_dpop_proof,
)

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
from .conftest import Fetch, jwkguard_settings

BASE = "http://testserver"
URLS = "tests.django.dpop_urls"
NONCE_SECRET = "0123456789abcdef0123456789abcdef"
ALGS = "ES256 EdDSA"


@pytest.fixture(scope="module")
def proof_key() -> SigningKey:
    return generate_key("ES256")


@pytest.fixture
def dpop_settings(issuer: LocalIssuer) -> Iterator[dict[str, Any]]:
    """DPoP accepted everywhere (a fresh verifier, so a fresh replay ledger, per test)."""
    settings = jwkguard_settings(issuer, DPOP={"ALGORITHMS": ["ES256", "EdDSA"]})
    with override_settings(JWKGUARD=settings, ROOT_URLCONF=URLS):
        yield settings


def bound(issuer: LocalIssuer, key: SigningKey, **claims: Any) -> str:
    return issuer.mint(cnf={"jkt": key.thumbprint}, **claims)


def proof(key: SigningKey, token: str, path: str, method: str = "GET", **extra: Any) -> str:
    return make_dpop_proof(key, method=method, url=BASE + path, access_token=token, **extra)


def refused(response: Any, reason: str, error: str = "invalid_dpop_proof") -> None:
    assert_dpop_refusal(
        response.status_code, response, response.json(), reason, error=error, algs=ALGS
    )


@pytest.mark.usefixtures("dpop_settings")
class TestDPoP:
    @pytest.mark.parametrize("path", ["/orders", "/aorders", "/drf/orders"])
    def test_a_bound_token_with_its_proof_is_accepted_once(
        self, fetch: Fetch, issuer: LocalIssuer, proof_key: SigningKey, path: str
    ) -> None:
        token = bound(issuer, proof_key, scopes=["orders:read"])
        headers = dpop_headers(token, proof(proof_key, token, path))
        response = fetch.get(path, headers=headers)
        assert response.status_code == 200, response.content
        assert response.json()["sub"] == "user-123"
        refused(fetch.get(path, headers=headers), "dpop_replayed")

    @pytest.mark.parametrize("name", UNENFORCEABLE_NAMES)
    @pytest.mark.parametrize("path", ["/orders", "/aorders", "/strict", "/drf/orders"])
    def test_a_binding_that_cannot_be_enforced_is_refused_not_read_as_bearer(
        self, fetch: Fetch, issuer: LocalIssuer, proof_key: SigningKey, path: str, name: str
    ) -> None:
        """A ``cnf`` we cannot check is 401 ``cnf_unsupported``, with or without a valid proof."""
        case = unenforceable_binding(proof_key, name)
        token = issuer.mint(cnf=case.cnf, scopes=["orders:read"])
        for headers in case.presentations(proof_key, method="GET", url=BASE + path, token=token):
            response = fetch.get(path, headers=headers)
            assert_cnf_refusal(response.status_code, response, response.json())

    def test_post_needs_a_proof_for_post(
        self, fetch: Fetch, issuer: LocalIssuer, proof_key: SigningKey
    ) -> None:
        token = bound(issuer, proof_key)
        wrong = dpop_headers(token, proof(proof_key, token, "/orders"))
        refused(fetch.post("/orders", headers=wrong), "dpop_proof_invalid")

    @pytest.mark.parametrize("case", BROKEN_PROOFS, ids=lambda case: case.name)
    def test_a_proof_for_another_request_time_token_or_key_is_refused(
        self, fetch: Fetch, issuer: LocalIssuer, proof_key: SigningKey, case: BrokenProof
    ) -> None:
        token = bound(issuer, proof_key)
        broken = case.make(proof_key, method="GET", url=BASE + "/orders", token=token)
        refused(fetch.get("/orders", headers=dpop_headers(token, broken)), case.reason)

    @pytest.mark.parametrize("host", ["testserver/aorders?", "testserver/aorders#", "a@testserver"])
    def test_a_host_header_cannot_move_the_proof_to_another_path(
        self, fetch: Fetch, issuer: LocalIssuer, proof_key: SigningKey, host: str
    ) -> None:
        """A proof for ``/aorders`` sent to ``/orders`` with a Host smuggling ``/aorders``:
        Django refuses the Host (400) before the URL for ``htu`` is built from it."""
        token = bound(issuer, proof_key, scopes=["orders:read"])
        for allowed in (["testserver"], ["*"]):
            headers = dpop_headers(token, proof(proof_key, token, "/aorders"))
            with override_settings(ALLOWED_HOSTS=allowed):
                response = fetch.get("/orders", headers={**headers, "Host": host})
            assert response.status_code == 400, (allowed, response.content)

    def test_a_bound_token_presented_as_bearer_is_refused(
        self, fetch: Fetch, issuer: LocalIssuer, proof_key: SigningKey
    ) -> None:
        token = bound(issuer, proof_key, scopes=["orders:read"])
        headers = {"Authorization": f"Bearer {token}", "DPoP": proof(proof_key, token, "/orders")}
        refused(fetch.get("/orders", headers=headers), "dpop_required")
        drf = {"Authorization": f"Bearer {token}"}
        refused(fetch.get("/drf/orders", headers=drf), "dpop_required")

    def test_the_dpop_scheme_with_an_unbound_token_is_refused(
        self, fetch: Fetch, issuer: LocalIssuer, proof_key: SigningKey
    ) -> None:
        token = issuer.mint()
        response = fetch.get("/orders", headers=dpop_headers(token, proof(proof_key, token, "/")))
        refused(response, "dpop_not_bound")

    def test_a_missing_proof_is_refused(
        self, fetch: Fetch, issuer: LocalIssuer, proof_key: SigningKey
    ) -> None:
        token = bound(issuer, proof_key)
        refused(fetch.get("/orders", headers=dpop_headers(token, None)), "dpop_proof_missing")

    def test_an_expired_token_with_the_dpop_scheme_gets_a_dpop_challenge(
        self, fetch: Fetch, issuer: LocalIssuer, proof_key: SigningKey
    ) -> None:
        token = bound(issuer, proof_key, now=time.time() - 900)
        response = fetch.get(
            "/orders", headers=dpop_headers(token, proof(proof_key, token, "/orders"))
        )
        assert response.status_code == 401
        assert response.json()["reason"] == "expired"
        assert response["WWW-Authenticate"].startswith(dpop_challenge("invalid_token"))

    def test_plain_bearer_tokens_pass_where_dpop_is_only_accepted(
        self, fetch: Fetch, issuer: LocalIssuer
    ) -> None:
        response = fetch.get("/orders", headers={"Authorization": f"Bearer {issuer.mint()}"})
        assert response.status_code == 200
        assert fetch.get("/orders")["WWW-Authenticate"] == 'Bearer realm="api"'

    @pytest.mark.parametrize("path", ["/strict", "/astrict"])
    def test_a_view_requiring_dpop_challenges_with_dpop_and_refuses_bearer(
        self, fetch: Fetch, issuer: LocalIssuer, proof_key: SigningKey, path: str
    ) -> None:
        missing = fetch.get(path)
        assert missing.status_code == 401
        assert missing["WWW-Authenticate"] == dpop_challenge(algs=ALGS)
        refused(
            fetch.get(path, headers={"Authorization": f"Bearer {issuer.mint()}"}), "dpop_required"
        )
        token = bound(issuer, proof_key)
        ok = fetch.get(path, headers=dpop_headers(token, proof(proof_key, token, path)))
        assert ok.status_code == 200, ok.content


def test_dpop_can_be_required_for_every_token_of_an_issuer(
    fetch: Fetch, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    settings = jwkguard_settings(issuer, DPOP=True, REQUIRE_DPOP_ISSUERS=[issuer.url])
    with override_settings(JWKGUARD=settings, ROOT_URLCONF=URLS):
        response = fetch.get("/orders", headers={"Authorization": f"Bearer {issuer.mint()}"})
        assert response.status_code == 401
        assert response.json()["reason"] == "dpop_required"
        assert response["WWW-Authenticate"].startswith(dpop_challenge("invalid_dpop_proof"))
        token = bound(issuer, proof_key)
        headers = dpop_headers(token, proof(proof_key, token, "/orders"))
        assert fetch.get("/orders", headers=headers).status_code == 200


def test_server_nonces_come_back_in_the_dpop_nonce_header(
    fetch: Fetch, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    settings = jwkguard_settings(issuer, DPOP={"NONCE_SECRET": NONCE_SECRET})
    with override_settings(JWKGUARD=settings, ROOT_URLCONF=URLS):
        token = bound(issuer, proof_key)
        first = fetch.get(
            "/orders", headers=dpop_headers(token, proof(proof_key, token, "/orders"))
        )
        assert first.status_code == 401
        assert first.json()["error"] == "use_dpop_nonce"
        nonce = first["DPoP-Nonce"]
        assert nonce == DPoPNonces(NONCE_SECRET.encode()).current(time.time())
        retry = proof(proof_key, token, "/orders", nonce=nonce)
        assert fetch.get("/orders", headers=dpop_headers(token, retry)).status_code == 200


def test_without_dpop_settings_a_bound_token_is_refused(
    fetch: Fetch, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    with override_settings(JWKGUARD=jwkguard_settings(issuer), ROOT_URLCONF=URLS):
        token = bound(issuer, proof_key)
        response = fetch.get(
            "/orders", headers=dpop_headers(token, proof(proof_key, token, "/orders"))
        )
    assert response.status_code == 401
    assert response.json()["reason"] == "dpop_not_supported"


def test_bad_sender_settings_are_reported_by_the_system_checks(issuer: LocalIssuer) -> None:
    from jwkguard_django.checks import check_settings

    for bad in (
        {"DPOP": {"ALGORITHMS": ["HS256"]}},
        {"DPOP": {"MAX_AGE": "soon"}},
        {"REQUIRE_DPOP": True},
        {"CLIENT_CERT_HEADER": "X-SSL-Client-Cert"},
        {"TRUSTED_PROXIES": ["not-a-network"]},
        {"INTROSPECTION": {"ENDPOINT": "https://id.example.com/introspect"}},
    ):
        with override_settings(JWKGUARD=jwkguard_settings(issuer, **bad)):
            ids = [message.id for message in check_settings()]
        assert ids == ["jwkguard.E008"], (bad, ids)


# -- certificate-bound tokens --------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


def test_a_certificate_from_the_wsgi_environ_satisfies_the_binding(
    issuer: LocalIssuer, ca: CertificateAuthority
) -> None:
    from django.test import Client

    mine, other = ca.issue("client-a"), ca.issue("client-b")
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(mine.der)})
    headers = {"Authorization": f"Bearer {token}"}
    with override_settings(JWKGUARD=jwkguard_settings(issuer), ROOT_URLCONF=URLS):
        client = Client()
        ok = client.get("/payments", headers=headers, SSL_CLIENT_CERT=mine.certificate_pem.decode())
        assert ok.status_code == 200
        wrong = client.get(
            "/payments", headers=headers, SSL_CLIENT_CERT=other.certificate_pem.decode()
        )
        assert wrong.status_code == 401
        assert wrong.json()["reason"] == "certificate_mismatch"
        unbound = client.get(
            "/payments",
            headers={"Authorization": f"Bearer {issuer.mint()}"},
            SSL_CLIENT_CERT=mine.certificate_pem.decode(),
        )
        assert unbound.json()["reason"] == "certificate_binding_required"


def test_a_proxy_header_counts_only_from_a_trusted_proxy(
    fetch: Fetch, issuer: LocalIssuer, ca: CertificateAuthority
) -> None:
    mine = ca.issue("client-a")
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(mine.der)})
    headers = {
        "Authorization": f"Bearer {token}",
        "X-SSL-Client-Cert": quote(mine.certificate_pem.decode()),
    }
    for trusted, status, reason in (
        (["127.0.0.0/8"], 200, None),
        (["10.0.0.0/8"], 401, "certificate_missing"),
    ):
        settings = jwkguard_settings(
            issuer, CLIENT_CERT_HEADER="X-SSL-Client-Cert", TRUSTED_PROXIES=trusted
        )
        with override_settings(JWKGUARD=settings, ROOT_URLCONF=URLS):
            response = fetch.get("/orders", headers=headers)
        assert response.status_code == status, response.content
        if reason is not None:
            assert response.json()["reason"] == reason


@pytest.mark.slow
def test_a_real_mtls_handshake_under_a_wsgi_server_binds_the_token(
    issuer: LocalIssuer, tmp_path: Path
) -> None:
    from django.core.handlers.wsgi import WSGIHandler

    files = TLSFiles.create(tmp_path)
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(files.client_pem)})
    headers = {"Authorization": f"Bearer {token}"}
    settings = jwkguard_settings(issuer)
    with (
        override_settings(JWKGUARD=settings, ROOT_URLCONF=URLS, ALLOWED_HOSTS=["127.0.0.1"]),
        WSGITLSServer(WSGIHandler(), files.server_context()) as server,
    ):
        with httpx.Client(verify=files.client_context(files.client), timeout=5) as client:
            ok = client.get(f"{server.url}/payments", headers=headers)
            assert ok.status_code == 200, ok.text
        with httpx.Client(verify=files.client_context(files.other_client), timeout=5) as client:
            wrong = client.get(f"{server.url}/payments", headers=headers)
            assert wrong.status_code == 401
            assert wrong.json()["reason"] == "certificate_mismatch"
        with (
            httpx.Client(verify=files.client_context(), timeout=5) as client,
            pytest.raises(httpx.HTTPError),
        ):
            client.get(f"{server.url}/payments", headers=headers)


# -- hybrid introspection --------------------------------------------------------------------


@pytest.fixture
def introspection(issuer: LocalIssuer) -> Iterator[IntrospectionEndpoint]:
    endpoint = issuer.enable_introspection()
    yield endpoint
    issuer.heal()


def introspection_settings(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint, **options: Any
) -> dict[str, Any]:
    return jwkguard_settings(
        issuer,
        INTROSPECTION={
            "ENDPOINT": endpoint.url,
            "CLIENT_ID": endpoint.client_id,
            "CLIENT_SECRET": endpoint.client_secret,
            "TIMEOUT": 2,
            "MAX_CACHE_TTL": 0.001,
            "INACTIVE_TTL": 0.001,
            **options,
        },
    )


@pytest.mark.parametrize("path", ["/transfer", "/atransfer"])
def test_a_view_marked_introspect_asks_the_authorization_server(
    fetch: Fetch, issuer: LocalIssuer, introspection: IntrospectionEndpoint, path: str
) -> None:
    token = issuer.mint(scopes=["payments:write"])
    headers = {"Authorization": f"Bearer {token}"}
    with override_settings(
        JWKGUARD=introspection_settings(issuer, introspection), ROOT_URLCONF=URLS
    ):
        before = issuer.requests["/introspect"]
        assert fetch.get(path, headers=headers).status_code == 200
        assert issuer.requests["/introspect"] == before + 1
        assert fetch.get("/orders", headers=headers).status_code == 200
        assert issuer.requests["/introspect"] == before + 1, "only marked views introspect"
        introspection.revoked.add(token)
        time.sleep(0.01)
        response = fetch.get(path, headers=headers)
        assert response.status_code == 401
        assert response.json()["reason"] == "inactive"
        assert response["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')


def test_an_unreachable_endpoint_gives_503_or_passes_as_configured(
    fetch: Fetch, issuer: LocalIssuer, introspection: IntrospectionEndpoint
) -> None:
    issuer.fail_with(500, paths={"/introspect"})
    headers = {"Authorization": f"Bearer {issuer.mint(scopes=['payments:write'])}"}
    closed = introspection_settings(issuer, introspection)
    with override_settings(JWKGUARD=closed, ROOT_URLCONF=URLS):
        response = fetch.get("/transfer", headers=headers)
        assert response.status_code == 503
        assert response.json()["reason"] == "introspection_unavailable"
        assert int(response["Retry-After"]) > 0
    opened = introspection_settings(issuer, introspection, FAIL_OPEN=True)
    with override_settings(JWKGUARD=opened, ROOT_URLCONF=URLS):
        assert fetch.get("/transfer", headers=headers).status_code == 200


def test_introspect_without_introspection_settings_is_a_configuration_error(
    issuer: LocalIssuer,
) -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.test import Client

    headers = {"Authorization": f"Bearer {issuer.mint(scopes=['payments:write'])}"}
    with override_settings(JWKGUARD=jwkguard_settings(issuer), ROOT_URLCONF=URLS):
        client = Client(raise_request_exception=True)
        with pytest.raises(ImproperlyConfigured, match="INTROSPECTION"):
            client.get("/transfer", headers=headers)


def test_require_dpop_in_the_settings_applies_to_every_view(
    fetch: Fetch, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    settings = jwkguard_settings(issuer, DPOP=True, REQUIRE_DPOP=True)
    with override_settings(JWKGUARD=settings, ROOT_URLCONF=URLS):
        missing = fetch.get("/orders")
        assert missing.status_code == 401
        assert missing["WWW-Authenticate"] == dpop_challenge()
        bearer_only = fetch.get("/orders", headers={"Authorization": f"Bearer {issuer.mint()}"})
        assert bearer_only.status_code == 401
        assert bearer_only.json()["reason"] == "dpop_required"
        token = bound(issuer, proof_key)
        headers = dpop_headers(token, proof(proof_key, token, "/aorders"))
        assert fetch.get("/aorders", headers=headers).status_code == 200
