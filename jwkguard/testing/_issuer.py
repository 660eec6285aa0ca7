"""A real local token issuer over HTTP on 127.0.0.1, for tests and demos."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Self

from .._context import SyncContext
from ._introspection import IntrospectionEndpoint
from ._keys import SigningKey, generate_key, mint_token

__all__ = ["LocalIssuer"]

_MAX_HANG = 60.0


@dataclass
class _Fault:
    """How the server misbehaves right now (None fields: behave)."""

    status: int | None = None
    hang: float | None = None
    slow_body: float | None = None
    body: bytes | None = None
    content_type: str | None = None
    redirect: str | None = None
    retry_after: int | None = None


class _IssuerServer(ThreadingHTTPServer):
    """The issuer's HTTP server: a client hanging up mid-request is not the server's error.

    ``socketserver`` prints a traceback for any error in a request thread; a client that
    resets its connection (a key source closing its pool at shutdown) would put one on
    stderr of every program using the issuer. Other errors still print.
    """

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class LocalIssuer(SyncContext):
    """A local OAuth/OIDC issuer that serves discovery and a JWK Set on 127.0.0.1.

    It signs tokens with its active key, can rotate and retire keys, can be told to fail
    (status codes, hangs, slow or broken bodies, redirects), and counts the requests it gets.

    Example:
        with LocalIssuer() as issuer:
            validator = Validator(issuers=[issuer.issuer_config()], algorithms=["RS256"])
            validator.validate(issuer.mint())
    """

    def __init__(
        self,
        *,
        alg: str = "RS256",
        audience: str = "https://api.example.com",
        path: str = "",
        cache_control: str | None = "max-age=300",
        host: str = "127.0.0.1",
        port: int = 0,
        key: SigningKey | None = None,
    ) -> None:
        if key is not None and key.alg != alg:
            raise ValueError(f"the key is for {key.alg}, not {alg}")
        self.alg = alg
        self.audience = audience
        self.cache_control = cache_control
        self.keys: list[SigningKey] = [key or generate_key(alg)]
        self.active_key = self.keys[0]
        self.requests: Counter[str] = Counter()
        self.fault = _Fault()
        self.fault_paths: frozenset[str] | None = None
        self.discovery_overrides: dict[str, Any] = {}
        self.serve_openid_configuration = True
        self.serve_oauth_metadata = True
        self.extra_jwks: list[Mapping[str, Any]] = []
        # More paths that serve the JWK Set (to imitate a provider's URL layout).
        self.jwks_paths: set[str] = set()
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler, bytes], None]] = {}
        self.last_headers: dict[str, dict[str, str]] = {}
        self._path = path.rstrip("/")
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server = _IssuerServer((host, port), _handler_for(self))
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """Serve in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release any hanging request."""
        self._release.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def _exit(self) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        """The issuer identifier (the ``iss`` of its tokens)."""
        return f"{self.base_url}{self._path}"

    @property
    def jwks_uri(self) -> str:
        """Where the JWK Set is served."""
        return f"{self.url}/jwks.json"

    def issuer_config(self, **options: Any) -> Any:
        """A ``jwkguard.Issuer`` for this issuer (discovery unless ``jwks_uri``/``jwks`` given)."""
        from jwkguard import Issuer

        options.setdefault("audiences", [self.audience])
        return Issuer(self.url, **options)

    # -- keys -----------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """The JWK Set document currently published."""
        with self._lock:
            keys = [dict(key.public_jwk) for key in self.keys]
        return {"keys": keys + [dict(jwk) for jwk in self.extra_jwks]}

    def rotate(self, alg: str | None = None, *, retire_old: bool = False) -> SigningKey:
        """Publish a new key and sign with it from now on."""
        key = generate_key(alg or self.alg)
        with self._lock:
            if retire_old:
                self.keys = []
            self.keys.append(key)
            self.active_key = key
        return key

    def retire(self, kid: str) -> None:
        """Stop publishing the key ``kid``."""
        with self._lock:
            self.keys = [key for key in self.keys if key.kid != kid]

    def mint(self, *, key: SigningKey | None = None, **claims: Any) -> str:
        """A token signed by the active key (or ``key``), for this issuer and audience."""
        claims.setdefault("issuer", self.url)
        claims.setdefault("audience", self.audience)
        return mint_token(key or self.active_key, **claims)

    def enable_introspection(
        self,
        *,
        client_id: str = "resource-server",
        client_secret: str | None = "s3cret-for-tests",  # noqa: S107 - a test fixture
        client_jwk: Mapping[str, Any] | None = None,
    ) -> IntrospectionEndpoint:
        """Serve an RFC 7662 introspection endpoint at ``{url}/introspect``."""
        endpoint = IntrospectionEndpoint(
            self, client_id=client_id, client_secret=client_secret, client_jwk=client_jwk
        )
        self.routes[f"{self._path}/introspect"] = endpoint.handle
        return endpoint

    # -- faults ---------------------------------------------------------------------------

    def fail_with(
        self, status: int, *, paths: set[str] | None = None, retry_after: int | None = None
    ) -> None:
        """Answer every request (or those to ``paths``) with ``status`` (and ``Retry-After``)."""
        self._set_fault(_Fault(status=status, retry_after=retry_after), paths)

    def hang(self, seconds: float = _MAX_HANG, *, paths: set[str] | None = None) -> None:
        """Hold every request (or those to ``paths``) for up to ``seconds`` before answering."""
        self._set_fault(_Fault(hang=min(seconds, _MAX_HANG)), paths)

    def slow_body(self, seconds: float, *, paths: set[str] | None = None) -> None:
        """Send headers at once, then trickle the body over ``seconds``."""
        self._set_fault(_Fault(slow_body=min(seconds, _MAX_HANG)), paths)

    def serve_body(
        self, body: bytes, *, content_type: str = "application/json", paths: set[str] | None = None
    ) -> None:
        """Answer 200 with this exact body (bad JSON, oversized, empty key set, ...)."""
        self._set_fault(_Fault(body=body, content_type=content_type), paths)

    def redirect_to(self, location: str, *, paths: set[str] | None = None) -> None:
        """Answer with a 302 to ``location``."""
        self._set_fault(_Fault(redirect=location), paths)

    def heal(self) -> None:
        """Behave normally again."""
        self._set_fault(_Fault(), None)

    @contextmanager
    def outage(self, status: int = 503) -> Iterator[None]:
        """Fail with ``status`` inside the block."""
        self.fail_with(status)
        try:
            yield
        finally:
            self.heal()

    def _set_fault(self, fault: _Fault, paths: set[str] | None) -> None:
        self._release.set()  # free requests held by an earlier hang
        self._release = threading.Event()
        self.fault = fault
        self.fault_paths = frozenset(paths) if paths is not None else None

    # -- serving --------------------------------------------------------------------------

    def discovery_document(self) -> dict[str, Any]:
        """The OpenID Provider metadata served at the well-known paths."""
        document = {
            "issuer": self.url,
            "jwks_uri": self.jwks_uri,
            "token_endpoint": f"{self.url}/token",
            "introspection_endpoint": f"{self.url}/introspect",
            "authorization_endpoint": f"{self.url}/authorize",
            "id_token_signing_alg_values_supported": [self.alg],
        }
        document.update(self.discovery_overrides)
        return document

    def _document_for(self, path: str) -> dict[str, Any] | None:
        if path == f"{self._path}/jwks.json" or path in self.jwks_paths:
            return self.jwks()
        if path == f"{self._path}/.well-known/openid-configuration":
            return self.discovery_document() if self.serve_openid_configuration else None
        if path == f"/.well-known/oauth-authorization-server{self._path}" or path == (
            f"{self._path}/.well-known/oauth-authorization-server"
        ):
            return self.discovery_document() if self.serve_oauth_metadata else None
        return None

    def _applies(self, path: str) -> bool:
        return self.fault_paths is None or path in self.fault_paths


_JSON: Final[Mapping[str, str]] = {"Content-Type": "application/json"}


def _handler_for(issuer: LocalIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: without this, Nagle's algorithm holds the
        # body until the client's delayed ACK (about 40 ms per kept-alive response).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the default stderr logging."""

        def do_GET(self) -> None:
            self._serve(b"")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._serve(self.rfile.read(min(length, 1 << 20)))

        def _serve(self, body: bytes) -> None:
            path = self.path.split("?", 1)[0]
            issuer.requests[path] += 1
            issuer.last_headers[path] = dict(self.headers.items())
            fault = issuer.fault if issuer._applies(path) else _Fault()
            release = issuer._release
            if fault.hang is not None:
                release.wait(fault.hang)
            if fault.status is not None:
                retry = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                self._send(fault.status, b'{"error":"unavailable"}', {**_JSON, **retry})
                return
            if fault.redirect is not None:
                self._send(302, b"", {"Location": fault.redirect})
                return
            if fault.body is not None:
                content_type = fault.content_type or "application/json"
                self._send(200, fault.body, {"Content-Type": content_type})
                return
            route = issuer.routes.get(path)
            if route is not None:
                route(self, body)
                return
            document = issuer._document_for(path)
            if document is None:
                self._send(404, b'{"error":"not_found"}', _JSON)
                return
            payload = json.dumps(document).encode()
            etag = '"' + hashlib.sha256(payload).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self._send(304, b"", {"ETag": etag})
                return
            self._send(200, payload, {**_JSON, "ETag": etag}, slow=fault.slow_body)

        def _send(
            self, status: int, body: bytes, headers: Mapping[str, str], *, slow: float | None = None
        ) -> None:
            """Every response: ``headers``, the length and (200, 304) the issuer's Cache-Control."""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if issuer.cache_control and status in (200, 304):
                self.send_header("Cache-Control", issuer.cache_control)
            self.end_headers()
            if slow is None:
                self.wfile.write(body)
                return
            chunks = max(1, min(len(body), 20))
            step = max(1, len(body) // chunks)
            for start in range(0, len(body), step):
                if issuer._release.wait(slow / chunks):
                    return
                self.wfile.write(body[start : start + step])
                self.wfile.flush()

    return Handler
