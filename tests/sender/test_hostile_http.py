"""Hostile clients against DPoP over real HTTP: raw sockets, so no client library normalises the
attack away. uvicorn serves the ASGI middleware and FastAPI, waitress the WSGI middleware."""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Annotated, Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI, Security

from jwkguard import Claims, Issuer, Validator
from jwkguard.asgi import JWKGuardMiddleware as ASGIGuard
from jwkguard.sender import DPoPVerifier, SenderConstraints
from jwkguard.testing import LocalIssuer, SigningKey, generate_key, make_dpop_proof
from jwkguard.wsgi import JWKGuardMiddleware as WSGIGuard
from jwkguard_fastapi import JWTBearer, install

from ..middleware.conftest import WaitressServer
from ..servers import ASGIServer


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as local:
        yield local


@pytest.fixture(scope="module")
def validator(issuer: LocalIssuer) -> Validator:
    return Validator(
        issuers=[Issuer(issuer.url, audiences=[issuer.audience], jwks=issuer.jwks())],
        algorithms=["RS256"],
    )


@pytest.fixture(scope="module")
def proof_key() -> SigningKey:
    return generate_key("ES256")


def _asgi_app(validator: Validator) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = json.dumps({"path": scope["path"]}).encode()
        length = str(len(body)).encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
        )
        await send({"type": "http.response.body", "body": body})

    return ASGIGuard(app, validator, sender=SenderConstraints(dpop=DPoPVerifier()))


def _wsgi_app(validator: Validator) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"path": environ["PATH_INFO"]}).encode()]

    return WSGIGuard(app, validator, sender=SenderConstraints(dpop=DPoPVerifier()))


def _fastapi_app(validator: Validator) -> Any:
    guard = JWTBearer(validator, dpop=DPoPVerifier())
    app = FastAPI()
    install(app, validator)

    @app.get("/public")
    async def public(claims: Annotated[Claims, Security(guard)]) -> Any:
        return {"path": "/public"}

    @app.get("/admin")
    async def admin(claims: Annotated[Claims, Security(guard)]) -> Any:
        return {"path": "/admin"}

    @app.get("/{rest:path}")
    async def anything(rest: str, claims: Annotated[Claims, Security(guard)]) -> Any:
        return {"path": f"/{rest}"}

    return app


SERVED: dict[str, Callable[[Validator], AbstractContextManager[Any]]] = {
    "asgi-uvicorn": lambda validator: ASGIServer(_asgi_app(validator)),
    "fastapi-uvicorn": lambda validator: ASGIServer(_fastapi_app(validator)),
    "wsgi-waitress": lambda validator: WaitressServer(_wsgi_app(validator)),
}


@pytest.fixture(scope="module", params=list(SERVED))
def port(request: pytest.FixtureRequest, validator: Validator) -> Iterator[int]:
    with SERVED[request.param](validator) as server:
        yield urlsplit(server.url).port


def raw_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as written; the status, the headers and the body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def dpop_get(port: int, path: str, hosts: list[str], token: str, proof: str) -> bytes:
    host_lines = "".join(f"Host: {host}\r\n" for host in hosts)
    return (
        f"GET {path} HTTP/1.1\r\n{host_lines}Authorization: DPoP {token}\r\n"
        f"DPoP: {proof}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:{port}/public?",  # the rest of the real target becomes a query
        "127.0.0.1:{port}/public#",  # ... or a fragment
        "127.0.0.1:{port}/public?x=",
        "evil@127.0.0.1:{port}/public?",
    ],
)
def test_a_host_header_cannot_move_the_proof_to_another_path(
    port: int, issuer: LocalIssuer, proof_key: SigningKey, host: str
) -> None:
    """A proof for ``/public`` sent to ``/admin`` with a Host that smuggles ``/public``: the
    URL built for ``htu`` must not take its path from the Host header (400 or 401, never 200)."""
    token = issuer.mint(cnf={"jkt": proof_key.thumbprint})
    proof = make_dpop_proof(
        proof_key, method="GET", url=f"http://127.0.0.1:{port}/public", access_token=token
    )
    request = dpop_get(port, "/admin", [host.format(port=port)], token, proof)
    status, headers, body = raw_exchange(port, request)
    assert status == 400, body
    assert json.loads(body)["reason"] == "bad_host"
    assert headers["www-authenticate"].startswith('DPoP realm="api", error="invalid_request"')


def test_two_host_headers_are_refused_for_a_dpop_request(
    port: int, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    """RFC 9112 section 3.2: more than one Host is a bad request; never "the first one"."""
    token = issuer.mint(cnf={"jkt": proof_key.thumbprint})
    url = f"http://127.0.0.1:{port}/admin"
    proof = make_dpop_proof(proof_key, method="GET", url=url, access_token=token)
    request = dpop_get(port, "/admin", [f"127.0.0.1:{port}", "evil.example"], token, proof)
    status, _, body = raw_exchange(port, request)
    assert status == 400, body  # by the server itself, or by jwkguard (bad_host)


def test_the_matching_host_is_still_accepted(
    port: int, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = issuer.mint(cnf={"jkt": proof_key.thumbprint})
    url = f"http://127.0.0.1:{port}/admin"
    proof = make_dpop_proof(proof_key, method="GET", url=url, access_token=token)
    status, _, body = raw_exchange(
        port, dpop_get(port, "/admin", [f"127.0.0.1:{port}"], token, proof)
    )
    assert status == 200, body
    assert json.loads(body) == {"path": "/admin"}


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"ath": "é"}, "dpop_proof_invalid"),
        ({"iat": 10**400}, "dpop_proof_invalid"),
        ({"jti": "\ud800"}, "dpop_proof_malformed"),
        ({"htu": "http://[/admin"}, "dpop_proof_invalid"),
    ],
    ids=["ath-non-ascii", "iat-huge", "jti-surrogate", "htu-broken-ipv6"],
)
def test_an_odd_proof_claim_is_a_401_never_a_500(
    port: int, issuer: LocalIssuer, proof_key: SigningKey, claims: dict[str, Any], reason: str
) -> None:
    token = issuer.mint(cnf={"jkt": proof_key.thumbprint})
    url = f"http://127.0.0.1:{port}/admin"
    proof = make_dpop_proof(proof_key, method="GET", url=url, access_token=token, **claims)
    request = dpop_get(port, "/admin", [f"127.0.0.1:{port}"], token, proof)
    status, headers, body = raw_exchange(port, request)
    assert status == 401, body
    assert json.loads(body)["reason"] == reason
    assert 'error="invalid_dpop_proof"' in headers["www-authenticate"]


def test_one_proof_sent_at_once_on_many_connections_passes_exactly_once(
    port: int, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    """The replay ledger decides atomically: of 12 simultaneous copies, one 200, eleven 401."""
    token = issuer.mint(cnf={"jkt": proof_key.thumbprint})
    url = f"http://127.0.0.1:{port}/admin"
    proof = make_dpop_proof(proof_key, method="GET", url=url, access_token=token)
    request = dpop_get(port, "/admin", [f"127.0.0.1:{port}"], token, proof)
    barrier = threading.Barrier(12, timeout=10)
    answers: list[tuple[int, bytes]] = []

    def send() -> None:
        barrier.wait()
        status, _, body = raw_exchange(port, request)
        answers.append((status, body))

    threads = [threading.Thread(target=send) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(status for status, _ in answers) == [200] + [401] * 11, answers
    assert all(
        json.loads(body)["reason"] == "dpop_replayed" for status, body in answers if status == 401
    )


@pytest.mark.parametrize("path", ["/caf%c3%a9", "/a%7Eb", "/%41dmin"])
def test_a_proof_for_the_path_as_sent_matches_however_the_server_re_encodes_it(
    port: int, issuer: LocalIssuer, proof_key: SigningKey, path: str
) -> None:
    """WSGI servers hand over the decoded path and jwkguard re-encodes it (``%7E`` -> ``~``,
    ``%c3`` -> ``%C3``); RFC 3986 section 6.2.2 normalisation makes the client's ``htu``, the
    path as it sent it, still match."""
    token = issuer.mint(cnf={"jkt": proof_key.thumbprint})
    url = f"http://127.0.0.1:{port}{path}"
    proof = make_dpop_proof(proof_key, method="GET", url=url, access_token=token)
    request = dpop_get(port, path, [f"127.0.0.1:{port}"], token, proof)
    status, _, body = raw_exchange(port, request)
    assert status == 200, body
