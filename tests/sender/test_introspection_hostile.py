"""A hostile introspection endpoint: a body that never ends, one that drips, one that is huge.

The endpoint is a raw socket server, so it can do what no framework would: promise a huge
``Content-Length``, send a byte every so often, or stream without end. Every exchange must be
bounded in time (``timeout`` for the whole answer, not per read) and in memory (the body limit).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jwkguard import RequestPipeline, RoutePolicy, Validator
from jwkguard.errors import ConfigurationError, IntrospectionUnavailable, TokenError
from jwkguard.sender._introspection import Introspector
from jwkguard.testing import IntrospectionEndpoint, LocalIssuer

from ..conftest import closed_after_the_test
from .kit import bearer_view

Behaviour = Callable[[socket.socket], None]


class RawEndpoint:
    """Answers every POST on 127.0.0.1 with ``behaviour``; counts the bytes it got out."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.sent = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/introspect"

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.sent += len(data)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    _read_request(conn)
                    self.behaviour(conn)
                except OSError:
                    pass  # the client gave up: what a bounded client does

    def __enter__(self) -> RawEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._listener.close()


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(65536)


def _huge(endpoint_box: list[RawEndpoint], *, chunked: bool) -> Behaviour:
    def behave(conn: socket.socket) -> None:
        endpoint = endpoint_box[0]
        total = 64 * 1024 * 1024
        framing = (
            b"Transfer-Encoding: chunked\r\n"
            if chunked
            else f"Content-Length: {total}\r\n".encode()
        )
        endpoint.send(
            conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + framing + b"\r\n"
        )
        block = b'{"active": true, "pad": "' + b"x" * 65536
        for _ in range(total // len(block)):
            endpoint.send(conn, b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)

    return behave


def _drip(endpoint_box: list[RawEndpoint], *, status: int = 200) -> Behaviour:
    def behave(conn: socket.socket) -> None:
        endpoint = endpoint_box[0]
        endpoint.send(
            conn,
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\n\r\n".encode(),
        )
        for _ in range(100):  # a byte every 0.2 s: each read is quick, the answer never ends
            endpoint.send(conn, b" ")
            time.sleep(0.2)

    return behave


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[list[RawEndpoint]], Behaviour]], RawEndpoint]]:
    started: list[RawEndpoint] = []

    def start(make: Callable[[list[RawEndpoint]], Behaviour]) -> RawEndpoint:
        box: list[RawEndpoint] = []
        endpoint = RawEndpoint(make(box))
        box.append(endpoint)
        started.append(endpoint.__enter__())
        return endpoint

    yield start
    for endpoint in started:
        endpoint.__exit__(None, None, None)


def _introspector(endpoint: RawEndpoint, **options: Any) -> Introspector:
    return closed_after_the_test(
        Introspector(
            endpoint=endpoint.url, client_id="rs", client_secret="secret", timeout=1, **options
        )
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_huge_answer_is_not_read_past_the_limit(serve: Any, chunked: bool) -> None:
    endpoint = serve(lambda box: _huge(box, chunked=chunked))
    introspector = _introspector(endpoint)
    with pytest.raises(IntrospectionUnavailable):
        introspector.introspect("opaque-token")
    assert endpoint.sent < 8 * 1024 * 1024, "the client read the whole 64 MiB answer"


@pytest.mark.anyio
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_huge_answer_is_not_read_past_the_limit_async(serve: Any, chunked: bool) -> None:
    endpoint = serve(lambda box: _huge(box, chunked=chunked))
    introspector = _introspector(endpoint)
    with pytest.raises(IntrospectionUnavailable):
        await introspector.aintrospect("opaque-token")
    await introspector.aclose()
    assert endpoint.sent < 8 * 1024 * 1024, "the client read the whole 64 MiB answer"


@pytest.mark.parametrize("status", [200, 400, 503])
def test_a_dripping_answer_is_bounded_by_the_timeout_as_a_whole(serve: Any, status: int) -> None:
    """Each read gets a byte well within ``timeout``; the whole answer must not take longer
    than about ``timeout`` (1 s here), not the 20 s the endpoint would drip for."""
    endpoint = serve(lambda box: _drip(box, status=status))
    introspector = _introspector(endpoint)
    started = time.monotonic()
    with pytest.raises(TokenError):
        introspector.introspect("opaque-token")
    assert time.monotonic() - started < 3


@pytest.mark.anyio
async def test_a_dripping_answer_is_bounded_by_the_timeout_as_a_whole_async(serve: Any) -> None:
    endpoint = serve(_drip)
    introspector = _introspector(endpoint)
    started = time.monotonic()
    with pytest.raises(IntrospectionUnavailable):
        await introspector.aintrospect("opaque-token")
    await introspector.aclose()
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.attacker.example/introspect",  # a name that starts like a loopback address
        "http://127.0.0.1.nip.io/introspect",
        "http://localhost.attacker.example/introspect",
        "http://attacker.example/introspect",
        "http://[::2]/introspect",
    ],
)
def test_plain_http_is_refused_unless_the_host_really_is_loopback(endpoint: str) -> None:
    with pytest.raises(ConfigurationError, match="https"):
        Introspector(endpoint=endpoint, client_id="rs", client_secret="secret")


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:8080/introspect",
        "http://127.5.6.7/introspect",
        "http://localhost/introspect",
        "http://LOCALHOST/introspect",
        "http://[::1]:8080/introspect",
    ],
)
def test_plain_http_to_a_loopback_host_is_still_allowed(endpoint: str) -> None:
    closed_after_the_test(Introspector(endpoint=endpoint, client_id="rs", client_secret="secret"))


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_never_followed_and_is_a_rejection_not_an_outage(
    serve: Any, status: int
) -> None:
    """A redirect could send the token (and this server's credentials) anywhere: the
    answer is 503 ``introspection_rejected`` under either policy, and the target never hears."""
    elsewhere = serve(lambda box: _answer(box, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))

    def redirect(box: list[RawEndpoint]) -> Behaviour:
        head = f"HTTP/1.1 {status} Moved\r\nLocation: {elsewhere.url}\r\nContent-Length: 0\r\n\r\n"
        return _answer(box, head.encode())

    endpoint = serve(redirect)
    for fail_open in (False, True):
        introspector = _introspector(endpoint, fail_open=fail_open)
        with pytest.raises(IntrospectionUnavailable) as caught:
            introspector.introspect(f"opaque-token-{fail_open}")
        assert caught.value.reason == "introspection_rejected"
    assert elsewhere.sent == 0


def _answer(box: list[RawEndpoint], data: bytes) -> Behaviour:
    def behave(conn: socket.socket) -> None:
        box[0].send(conn, data)

    return behave


@pytest.mark.parametrize(
    "body",
    [
        b'{"active": "true", "sub": "svc"}',  # a string is not the boolean RFC 7662 asks for
        b'{"active": 1, "sub": "svc"}',
        b'{"sub": "svc"}',
        b'[{"active": true}]',
        b"active=true",
        b"\xff\xfe",
    ],
    ids=["active-string", "active-number", "active-missing", "array", "not-json", "not-utf8"],
)
def test_a_broken_answer_is_never_read_as_active(serve: Any, body: bytes) -> None:
    """A 200 that does not say ``"active": true`` as a JSON boolean is an outage: 503 when
    fail-closed; fail-open returns None (only a locally validated JWT may then pass)."""
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    endpoint = serve(lambda box: _answer(box, head.encode() + body))
    with pytest.raises(IntrospectionUnavailable) as caught:
        _introspector(endpoint).introspect("opaque-token")
    assert caught.value.reason == "introspection_unavailable"
    assert _introspector(endpoint, fail_open=True).introspect("opaque-token") is None


@pytest.mark.parametrize(
    ("exp", "active"),
    [
        (b"1" + b"0" * 400, True),  # an integer no float holds: far in the future
        (b"-1" + b"0" * 400, False),
        (b"1e400", True),  # JSON's float overflow: infinity
    ],
    ids=["huge-int", "huge-negative-int", "float-overflow"],
)
def test_an_out_of_range_exp_is_judged_never_a_crash(serve: Any, exp: bytes, active: bool) -> None:
    body = b'{"active": true, "sub": "svc", "exp": ' + exp + b"}"
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    endpoint = serve(lambda box: _answer(box, head.encode() + body))
    introspector = _introspector(endpoint)
    if active:
        claims = introspector.introspect("opaque-token")
        assert claims is not None
        assert claims.subject == "svc"
    else:
        with pytest.raises(TokenError) as caught:
            introspector.introspect("opaque-token")
        assert caught.value.reason == "inactive"


@pytest.mark.parametrize(
    "aud",
    [b'[["api"]]', b'[{"api": 1}]', b"[1, null]", b'{"api": true}', b"7"],
    ids=["list-in-list", "object-in-list", "non-strings", "object", "number"],
)
def test_an_odd_audience_in_the_answer_is_a_mismatch_not_a_crash(serve: Any, aud: bytes) -> None:
    body = b'{"active": true, "sub": "svc", "aud": ' + aud + b"}"
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    endpoint = serve(lambda box: _answer(box, head.encode() + body))
    with pytest.raises(TokenError) as caught:
        _introspector(endpoint, audiences=["api"]).introspect("opaque-token")
    assert caught.value.reason == "audience_mismatch"


def test_in_hybrid_mode_the_jwt_decides_and_the_answer_only_says_active(
    issuer: LocalIssuer, endpoint: IntrospectionEndpoint
) -> None:
    """Pinned: on an ``introspect`` route the locally verified JWT's claims are the request's
    claims; the endpoint's other members (another ``sub``, no scope, a ``cnf``) are not read.
    Only ``active`` counts (false refuses, as the other tests show)."""
    validator = Validator(issuers=[issuer.issuer_config()], algorithms=["RS256"])
    introspector = closed_after_the_test(
        Introspector(
            endpoint=endpoint.url,
            client_id=endpoint.client_id,
            client_secret=endpoint.client_secret,
        )
    )
    pipeline = RequestPipeline(validator, introspector=introspector)
    token = issuer.mint(subject="alice", scopes=["orders:read"])
    endpoint.opaque_tokens[token] = {"sub": "mallory", "scope": "", "cnf": {"jkt": "x" * 43}}
    decision = pipeline.run(
        bearer_view(token), RoutePolicy(introspect=True, scopes=["orders:read"])
    )
    assert decision.allowed
    assert decision.introspected
    assert decision.claims is not None
    assert decision.claims.subject == "alice"
    validator.close()
