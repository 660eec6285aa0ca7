"""Certificate-bound tokens (RFC 8705) over real mutual TLS.

1. uvicorn itself terminating TLS with ``ssl_cert_reqs=CERT_REQUIRED``: the handshake demands
   the client certificate, but uvicorn (0.54 here) does not pass it to the application (no ASGI
   TLS extension in the scope), so a certificate-bound token cannot be matched there and is
   refused (``certificate_missing``) rather than let through.
2. nginx terminating TLS (``ssl_verify_client on``) in front of the app, forwarding the verified
   certificate in ``X-SSL-Client-Cert`` (``$ssl_client_escaped_cert``) from its own address,
   which the app trusts: the binding is checked end to end, DPoP included.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
import ssl
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI, Request, Security

from jwkguard import Claims, Validator
from jwkguard.sender import DPoPVerifier, certificate_thumbprint
from jwkguard.testing import LocalIssuer, generate_key, make_dpop_proof
from jwkguard_fastapi import JWTBearer, install

from ..conftest import require_binary
from ..helpers import bearer
from ..sender.kit import TLSFiles, dpop_headers
from ..servers import ASGIServer, Nginx, free_port

pytestmark = pytest.mark.slow

PROXY_ADDRESS = "127.0.0.2"
"""nginx connects to the app from this loopback address (``proxy_bind``); only it is trusted."""


def mtls_app(validator: Validator, **options: Any) -> FastAPI:
    auth = JWTBearer(validator, dpop=DPoPVerifier(), **options)
    app = FastAPI()
    install(app, validator)

    @app.get("/tls")
    async def tls(request: Request) -> Any:
        extension = (request.scope.get("extensions") or {}).get("tls") or {}
        return {"client_cert_chain": bool(extension.get("client_cert_chain"))}

    @app.get("/payments")
    async def payments(claims: Annotated[Claims, Security(auth)]) -> Any:
        return {"sub": claims.subject}

    return app


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return TLSFiles.create(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def uvicorn_mtls(static_validator_module: Validator, files: TLSFiles) -> Iterator[ASGIServer]:
    with ASGIServer(
        mtls_app(static_validator_module),
        ssl_certfile=str(files.server_cert),
        ssl_keyfile=str(files.server_key),
        ssl_ca_certs=str(files.ca),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def static_validator_module(issuer: LocalIssuer) -> Validator:
    from jwkguard import Issuer

    return Validator(
        issuers=[Issuer(issuer.url, audiences=[issuer.audience], jwks=issuer.jwks())],
        algorithms=["RS256"],
    )


def test_uvicorn_demands_a_client_certificate_in_the_handshake(
    uvicorn_mtls: ASGIServer, files: TLSFiles, issuer: LocalIssuer
) -> None:
    with httpx.Client(verify=files.client_context(files.client), timeout=5) as client:
        ok = client.get(f"{uvicorn_mtls.url}/payments", headers=bearer(issuer.mint()))
        assert ok.status_code == 200, ok.text
    with (
        httpx.Client(verify=files.client_context(), timeout=5) as anonymous,
        pytest.raises(httpx.HTTPError),
    ):
        anonymous.get(f"{uvicorn_mtls.url}/payments", headers=bearer(issuer.mint()))


def test_under_uvicorn_a_bound_token_passes_only_if_the_app_can_see_the_certificate(
    uvicorn_mtls: ASGIServer, files: TLSFiles, issuer: LocalIssuer
) -> None:
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(files.client_pem)})
    with httpx.Client(verify=files.client_context(files.client), timeout=5) as client:
        exposed = client.get(f"{uvicorn_mtls.url}/tls").json()["client_cert_chain"]
        response = client.get(f"{uvicorn_mtls.url}/payments", headers=bearer(token))
    if exposed:  # a uvicorn that implements the ASGI TLS extension
        assert response.status_code == 200, response.text
    else:  # this one: the app never sees the certificate, so the token is refused
        assert response.status_code == 401
        assert response.json()["reason"] == "certificate_missing"


def test_the_uvicorn_installed_here_does_not_expose_the_tls_extension(
    uvicorn_mtls: ASGIServer, files: TLSFiles
) -> None:
    """Recorded so that an upgrade that adds it is noticed (then the test above checks 200)."""
    with httpx.Client(verify=files.client_context(files.client), timeout=5) as client:
        assert client.get(f"{uvicorn_mtls.url}/tls").json() == {"client_cert_chain": False}


# -- behind nginx ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def behind_nginx(
    static_validator_module: Validator, files: TLSFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Nginx, ASGIServer]]:
    binary = require_binary("nginx")
    app = mtls_app(
        static_validator_module,
        client_cert_header="X-SSL-Client-Cert",
        trusted_proxies=[PROXY_ADDRESS],
    )
    # uvicorn believes X-Forwarded-Proto from nginx only, so the app sees the https URL the
    # client addressed (the DPoP htu); no X-Forwarded-For, so the peer stays nginx.
    with ASGIServer(app, proxy_headers=True, forwarded_allow_ips=PROXY_ADDRESS) as upstream:
        port = free_port()
        block = f"""
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {files.server_cert};
        ssl_certificate_key {files.server_key};
        ssl_client_certificate {files.ca};
        ssl_verify_client on;
        location / {{
            proxy_pass http://127.0.0.1:{upstream.port};
            proxy_bind {PROXY_ADDRESS};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
        }}
    }}
"""
        with Nginx(binary, tmp_path_factory.mktemp("nginx"), block, port) as nginx:
            yield nginx, upstream


def test_behind_nginx_the_forwarded_certificate_binds_the_token(
    behind_nginx: tuple[Nginx, ASGIServer], files: TLSFiles, issuer: LocalIssuer
) -> None:
    nginx, _ = behind_nginx
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(files.client_pem)})
    url = f"https://127.0.0.1:{nginx.port}/payments"
    with httpx.Client(verify=files.client_context(files.client), timeout=5) as client:
        ok = client.get(url, headers=bearer(token))
        assert ok.status_code == 200, (ok.text, nginx.error_log())
    with httpx.Client(verify=files.client_context(files.other_client), timeout=5) as client:
        wrong = client.get(url, headers=bearer(token))
        assert wrong.status_code == 401
        assert wrong.json()["reason"] == "certificate_mismatch"
    with httpx.Client(verify=files.client_context(), timeout=5) as anonymous:
        # nginx completes the handshake and answers 400 itself ("No required SSL certificate
        # was sent"); the request never reaches the app.
        refused = anonymous.get(url, headers=bearer(token))
        assert refused.status_code == 400
        assert "certificate" in refused.text


def test_a_client_going_around_nginx_cannot_forge_the_certificate_header(
    behind_nginx: tuple[Nginx, ASGIServer], files: TLSFiles, issuer: LocalIssuer
) -> None:
    _, upstream = behind_nginx
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(files.client_pem)})
    forged = {**bearer(token), "X-SSL-Client-Cert": quote(files.client_pem.decode())}
    with httpx.Client(timeout=5) as client:
        response = client.get(f"{upstream.url}/payments", headers=forged)
    assert response.status_code == 401
    assert response.json()["reason"] == "certificate_missing"


def test_behind_nginx_a_token_bound_to_both_a_dpop_key_and_the_certificate_passes(
    behind_nginx: tuple[Nginx, ASGIServer], files: TLSFiles, issuer: LocalIssuer
) -> None:
    nginx, _ = behind_nginx
    key = generate_key("ES256")
    token = issuer.mint(
        cnf={"jkt": key.thumbprint, "x5t#S256": certificate_thumbprint(files.client_pem)}
    )
    url = f"https://127.0.0.1:{nginx.port}/payments"
    with httpx.Client(verify=files.client_context(files.client), timeout=5) as client:
        proof = make_dpop_proof(key, method="GET", url=url, access_token=token)
        ok = client.get(url, headers=dpop_headers(token, proof))
        assert ok.status_code == 200, ok.text
        replay = client.get(url, headers=dpop_headers(token, proof))
        assert replay.json()["reason"] == "dpop_replayed"
    with httpx.Client(verify=files.client_context(files.other_client), timeout=5) as client:
        proof = make_dpop_proof(key, method="GET", url=url, access_token=token)
        stolen = client.get(url, headers=dpop_headers(token, proof))
        assert stolen.json()["reason"] == "certificate_mismatch"
