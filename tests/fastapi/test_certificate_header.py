"""JWTBearer with certificate-bound tokens (RFC 8705) whose certificate a trusted proxy forwards
in a header; real mutual TLS is in test_mtls.py."""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI, Security
from fastapi.testclient import TestClient

from jwkguard import Claims, Validator
from jwkguard.sender import certificate_thumbprint
from jwkguard.testing import CertificateAuthority, LocalIssuer
from jwkguard_fastapi import JWTBearer, install

from ..helpers import bearer
from .conftest import ServedApp

BASE = "http://testserver"


def cert_app(validator: Validator, **options: Any) -> FastAPI:
    auth = JWTBearer(validator, **options)
    app = FastAPI()
    install(app, validator)

    @app.get("/payments")
    async def payments(claims: Annotated[Claims, Security(auth)]) -> Any:
        return {"sub": claims.subject}

    return app


def behind_proxy(validator: Validator, trusted_proxies: list[str]) -> FastAPI:
    """``cert_app`` reading the client certificate from ``X-SSL-Client-Cert``."""
    return cert_app(
        validator, client_cert_header="X-SSL-Client-Cert", trusted_proxies=trusted_proxies
    )


def certificate_bound(issuer: LocalIssuer, ca: CertificateAuthority) -> tuple[str, dict[str, str]]:
    """A token bound to a new client certificate, and the header a proxy forwards it in."""
    certificate = ca.issue("client-a")
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(certificate.der)})
    return token, {"X-SSL-Client-Cert": quote(certificate.certificate_pem.decode())}


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


def test_a_certificate_forwarded_by_a_trusted_proxy_satisfies_the_binding(
    static_validator: Validator, issuer: LocalIssuer, ca: CertificateAuthority
) -> None:
    token, header = certificate_bound(issuer, ca)
    app = behind_proxy(static_validator, trusted_proxies=["127.0.0.1"])
    with ServedApp(app) as served, httpx.Client(timeout=5) as http:
        ok = http.get(f"{served.url}/payments", headers={**bearer(token), **header})
        assert ok.status_code == 200, ok.text
        other = quote(ca.issue("client-b").certificate_pem.decode())
        wrong = http.get(
            f"{served.url}/payments", headers={**bearer(token), "X-SSL-Client-Cert": other}
        )
        assert wrong.status_code == 401
        assert wrong.json()["reason"] == "certificate_mismatch"
        assert wrong.headers["www-authenticate"].startswith(
            'Bearer realm="api", error="invalid_token"'
        )
        missing = http.get(f"{served.url}/payments", headers=bearer(token))
        assert missing.json()["reason"] == "certificate_missing"


def test_a_certificate_header_from_an_untrusted_peer_is_ignored(
    static_validator: Validator, issuer: LocalIssuer, ca: CertificateAuthority
) -> None:
    token, header = certificate_bound(issuer, ca)
    app = behind_proxy(static_validator, trusted_proxies=["10.0.0.0/8"])
    with ServedApp(app) as served, httpx.Client(timeout=5) as http:
        response = http.get(f"{served.url}/payments", headers={**bearer(token), **header})
    assert response.status_code == 401
    assert response.json()["reason"] == "certificate_missing"


def test_require_certificate_refuses_tokens_that_are_not_certificate_bound(
    static_validator: Validator, issuer: LocalIssuer
) -> None:
    app = cert_app(static_validator, require_certificate=True)
    with TestClient(app, base_url=BASE) as test_client:
        response = test_client.get("/payments", headers=bearer(issuer.mint()))
    assert response.status_code == 401
    assert response.json()["reason"] == "certificate_binding_required"
