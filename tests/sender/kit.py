"""Shared by the sender-constraint tests of the core and of every adapter.

Each adapter runs the same broken-proof cases and expects the same answer, so the RFC 6750 /
RFC 9449 contract is checked to be identical everywhere.
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jwkguard.pipeline import RequestView
from jwkguard.testing import CertificateAuthority, SigningKey, generate_key, make_dpop_proof

ALGS = "ES256 RS256 PS256 EdDSA Ed25519"
"""The ``algs`` of a default ``DPoPVerifier``'s challenges."""


@dataclass(frozen=True)
class BrokenProof:
    """A proof that is wrong in one way, and the refusal every adapter must give."""

    name: str
    method: str | None = None
    url: str | None = None
    iat_offset: float = 0
    access_token: str | None = None
    omit: tuple[str, ...] = ()
    header: dict[str, Any] = field(default_factory=dict)
    thief: bool = False
    reason: str = "dpop_proof_invalid"

    def make(self, key: SigningKey, *, method: str, url: str, token: str) -> str:
        """The broken proof for a request ``method url`` carrying ``token``."""
        return make_dpop_proof(
            generate_key("ES256") if self.thief else key,
            method=self.method or method,
            url=self.url or url,
            access_token=self.access_token or token,
            iat=time.time() + self.iat_offset,
            omit=self.omit,
            header=self.header or None,
        )


BROKEN_PROOFS = [
    BrokenProof("wrong-htm", method="DELETE"),
    BrokenProof("wrong-htu-path", url="http://127.0.0.1/elsewhere"),
    BrokenProof("wrong-htu-host", url="https://evil.example.com/orders"),
    BrokenProof("stale-iat", iat_offset=-600),
    BrokenProof("future-iat", iat_offset=600),
    BrokenProof("missing-ath", omit=("ath",)),
    BrokenProof("wrong-ath", access_token="another-access-token"),
    BrokenProof("wrong-typ", header={"typ": "JWT"}),
    BrokenProof("key-mismatch", thief=True, reason="dpop_key_mismatch"),
]
"""One rule broken per case."""


class _AuthorizationOnly:
    """Request headers holding one Authorization value."""

    def __init__(self, authorization: str) -> None:
        self.authorization = authorization

    def getlist(self, name: str) -> list[str]:
        return [self.authorization] if name == "authorization" else []


def bearer_view(token: str) -> RequestView:
    """A ``GET https://api.example.com/pay`` carrying ``token`` as a bearer token."""
    return RequestView(
        method="GET",
        headers=_AuthorizationOnly(f"Bearer {token}"),
        query="",
        url=lambda: "https://api.example.com/pay",
        client="127.0.0.9",
    )


def dpop_headers(token: str, proof: str | None) -> dict[str, str]:
    """``Authorization: DPoP <token>`` and, if given, the ``DPoP`` proof header."""
    headers = {"Authorization": f"DPoP {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return headers


def dpop_challenge(error: str | None = None, realm: str = "api", algs: str = ALGS) -> str:
    """The start of the ``WWW-Authenticate`` value of a DPoP challenge (RFC 9449 §7.1)."""
    if error is None:
        return f'DPoP realm="{realm}", algs="{algs}"'
    return f'DPoP realm="{realm}", error="{error}"'


def assert_dpop_refusal(
    status: int,
    headers: Any,
    body: Any,
    reason: str,
    *,
    error: str = "invalid_dpop_proof",
    algs: str = ALGS,
) -> None:
    """The RFC 9449 refusal: 401, a DPoP challenge naming the error and algs, the JSON body."""
    assert status == 401, body
    challenge = headers["WWW-Authenticate"]
    assert challenge.startswith(dpop_challenge(error)), challenge
    assert challenge.endswith(f'algs="{algs}"'), challenge
    assert body["error"] == error
    assert body["reason"] == reason
    assert body["error_description"]


@dataclass(frozen=True)
class UnenforceableBinding:
    """A ``cnf`` (RFC 7800) no sender constraint can enforce, for a proof key."""

    name: str
    cnf: Any

    def presentations(
        self, key: SigningKey, *, method: str, url: str, token: str
    ) -> list[dict[str, str]]:
        """The token as a Bearer token, and with the DPoP scheme and a valid proof by ``key``."""
        proof = make_dpop_proof(key, method=method, url=url, access_token=token)
        return [{"Authorization": f"Bearer {token}"}, dpop_headers(token, proof)]


def unenforceable_bindings(key: SigningKey) -> list[UnenforceableBinding]:
    """The ``cnf`` shapes every adapter must refuse; ``key`` signs the proofs sent with them."""
    jwk = dict(key.public_jwk)
    return [
        UnenforceableBinding("jwk", {"jwk": jwk}),  # RFC 7800 section 3.2
        UnenforceableBinding("jkt-and-jwk", {"jkt": key.thumbprint, "jwk": jwk}),
        UnenforceableBinding("jkt-list", {"jkt": [key.thumbprint]}),
        UnenforceableBinding("jkt-number", {"jkt": 7}),
        UnenforceableBinding("x5t-list", {"x5t#S256": ["bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jd"]}),
        UnenforceableBinding("kid", {"kid": "holder-key-1"}),  # RFC 7800 section 3.4
        UnenforceableBinding("unknown-member", {"jkt": key.thumbprint, "future": "x"}),
        UnenforceableBinding("string", key.thumbprint),
        UnenforceableBinding("empty", {}),
    ]


UNENFORCEABLE_NAMES = [case.name for case in unenforceable_bindings(generate_key("ES256"))]
"""The names of the ``unenforceable_bindings`` cases, to parametrize tests with."""


def unenforceable_binding(key: SigningKey, name: str) -> UnenforceableBinding:
    """The ``unenforceable_bindings`` case called ``name``."""
    return next(case for case in unenforceable_bindings(key) if case.name == name)


def assert_cnf_refusal(status: int, headers: Any, body: Any) -> None:
    """401 ``invalid_token`` with the stable reason ``cnf_unsupported``, never a pass."""
    assert status == 401, body
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert body["error"] == "invalid_token"
    assert body["reason"] == "cnf_unsupported"


# -- TLS servers for real mTLS handshakes ---------------------------------------------------


@dataclass
class TLSFiles:
    """A CA, a server certificate for 127.0.0.1 and two client certificates, on disk."""

    ca: Path
    server_cert: Path
    server_key: Path
    client: tuple[Path, Path]
    other_client: tuple[Path, Path]
    client_pem: bytes
    other_client_pem: bytes

    @classmethod
    def create(cls, directory: Path) -> TLSFiles:
        authority = CertificateAuthority()
        ca = directory / "ca.crt"
        ca.write_bytes(authority.certificate_pem)
        server_cert, server_key = authority.issue("127.0.0.1", server=True).write(
            directory, "server"
        )
        client = authority.issue("client-a")
        other = authority.issue("client-b")
        return cls(
            ca=ca,
            server_cert=server_cert,
            server_key=server_key,
            client=client.write(directory, "client-a"),
            other_client=other.write(directory, "client-b"),
            client_pem=client.certificate_pem,
            other_client_pem=other.certificate_pem,
        )

    def server_context(self) -> ssl.SSLContext:
        """A server context that demands a client certificate signed by the CA."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        context.load_verify_locations(self.ca)
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self, identity: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        """A client context trusting the CA, presenting ``identity`` if given."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if identity is not None:
            context.load_cert_chain(*identity)
        return context


class WSGITLSServer:
    """werkzeug's WSGI server on 127.0.0.1 with TLS that requires client certificates.

    werkzeug puts the verified client certificate in ``environ["SSL_CLIENT_CERT"]`` (PEM),
    as Apache's mod_ssl does.
    """

    def __init__(self, app: Any, context: ssl.SSLContext) -> None:
        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> WSGITLSServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()
