"""Fetching a JWK Set: one flow shared by two thin httpx drivers.

The flow (``key_set_flow``) is a generator in the style of httpx's auth flows: it yields each
HTTP request it needs (discovery documents, redirects, the JWK Set) and receives the response,
so every decision (redirect policy, conditional requests, content checks, key import) is
written once. ``SyncDriver`` runs it over ``httpx.Client`` and ``AsyncDriver`` over
``httpx.AsyncClient``; each also owns the single-flight primitive of its world (a lock, or
one shared task).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from .._issuer import Issuer, is_loopback_host
from ._cache import Failed, Fetched, FetchError, FetchOutcome, FetchTicket, NotModified
from ._discovery import discovery_urls, jwks_uri_from
from ._set import KeySet

__all__ = [
    "AsyncDriver",
    "FetchTarget",
    "HttpRequest",
    "HttpResponse",
    "SyncDriver",
    "key_set_flow",
    "server_lifetime",
]

MAX_REDIRECTS = 2
# One fetch (discovery, redirects, the JWK Set) may take at most this many `timeout`s.
FETCH_BUDGET_TIMEOUTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_KEPT_HEADERS = (
    "age",
    "cache-control",
    "content-type",
    "date",
    "etag",
    "expires",
    "last-modified",
    "location",
)
_JWKS_ACCEPT = "application/jwk-set+json, application/json"
_CLIENT_HEADERS = {"User-Agent": "jwkguard", "Accept-Encoding": "identity"}


@dataclass(frozen=True, slots=True)
class FetchTarget:
    """What to fetch for one issuer, and the guards that apply.

    Attributes:
        issuer: The configured issuer (discovery starts from it; its metadata must name it).
        jwks_uri: The configured JWK Set location, or None for discovery.
        algorithms: The allowed asymmetric algorithms (keys that fit none are skipped).
        max_keys: Largest number of keys accepted in one JWK Set.
        max_bytes: Largest document accepted; reading stops past it.
        allow_insecure_http: Accept ``http://`` for non-loopback hosts.
        timeout: Bound on each HTTP exchange, in seconds.
    """

    issuer: str
    jwks_uri: str | None
    algorithms: frozenset[str]
    max_keys: int
    max_bytes: int
    allow_insecure_http: bool
    timeout: float

    @classmethod
    def for_issuer(cls, issuer: Issuer, algorithms: frozenset[str]) -> FetchTarget:
        """The target an ``Issuer`` configures."""
        return cls(
            issuer=issuer.issuer,
            jwks_uri=issuer.jwks_uri,
            algorithms=algorithms,
            max_keys=issuer.max_keys,
            max_bytes=issuer.max_response_bytes,
            allow_insecure_http=issuer.allow_insecure_http,
            timeout=float(issuer.timeout),
        )

    @property
    def budget(self) -> float:
        """The longest one whole fetch may take, in seconds."""
        return self.timeout * FETCH_BUDGET_TIMEOUTS


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A GET the flow needs."""

    url: str
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What the flow needs of a response: status, a few headers (lower-case names), body."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes = b""


Flow = Generator[HttpRequest, HttpResponse, Fetched | NotModified]


# -- HTTP semantics -------------------------------------------------------------------------


def _digits(value: str) -> int | None:
    value = value.strip().strip('"')
    return int(value) if value.isascii() and value.isdigit() else None


def server_lifetime(headers: Mapping[str, str]) -> float | None:
    """The freshness lifetime the server gives a response (RFC 9111 section 4.2.1), or None.

    ``no-store``/``no-cache`` give 0 (the caller clamps it to ``min_ttl``); ``max-age`` minus
    ``Age``; else ``Expires`` minus ``Date``; None when the server says nothing usable.
    """
    cache_control = headers.get("cache-control")
    if cache_control:
        directives: dict[str, str] = {}
        for part in cache_control.split(","):
            name, _, value = part.partition("=")
            directives[name.strip().lower()] = value
        if "no-store" in directives or "no-cache" in directives:
            return 0.0
        max_age = _digits(directives.get("max-age", ""))
        if max_age is not None:
            age = _digits(headers.get("age", "")) or 0
            return float(max(0, max_age - age))
    expires = headers.get("expires")
    date = headers.get("date")
    if expires is not None and date is not None:
        try:
            lifetime = parsedate_to_datetime(expires) - parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            return 0.0  # RFC 9111 section 5.3: an invalid Expires means "already expired"
        return max(0.0, lifetime.total_seconds())
    return None


def check_url(url: str, target: FetchTarget, what: str) -> None:
    """Refuse ``url`` unless it is HTTPS, or HTTP to loopback or with insecure HTTP allowed."""
    parts = urlsplit(url)
    if parts.hostname and (
        parts.scheme == "https"
        or (parts.scheme == "http" and (is_loopback_host(url) or target.allow_insecure_http))
    ):
        return
    raise FetchError("insecure_url", f"{what} {url} must be an https URL")


def _same_host(origin: str, location: str) -> bool:
    a, b = urlsplit(origin), urlsplit(location)
    return a.hostname == b.hostname and a.port == b.port


def _json_object(response: HttpResponse, what: str) -> dict[str, Any]:
    content_type = response.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise FetchError(
            "wrong_content_type",
            f"{what} at {response.url} has content type {content_type or 'none'!r}, not JSON",
        )
    try:
        document = json.loads(response.body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FetchError("bad_json", f"{what} at {response.url} is not valid JSON") from exc
    if not isinstance(document, dict):
        raise FetchError("bad_json", f"{what} at {response.url} is not a JSON object")
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


# -- the flow -------------------------------------------------------------------------------


def _get(
    target: FetchTarget, url: str, headers: Mapping[str, str], what: str
) -> Generator[HttpRequest, HttpResponse, HttpResponse]:
    """GET ``url``, following redirects to the same host only."""
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, target, what)
        response = yield HttpRequest(url, headers)
        if response.status not in _REDIRECT_STATUSES:
            return response
        location = response.headers.get("location")
        if not location:
            raise FetchError("bad_redirect", f"{url} redirected without a Location")
        following = urljoin(url, location)
        if not _same_host(url, following):
            raise FetchError(
                "cross_host_redirect", f"{url} redirected to another host ({following})"
            )
        url = following
    raise FetchError("too_many_redirects", f"{what} at {url}: more than {MAX_REDIRECTS} redirects")


def _discover(target: FetchTarget) -> Generator[HttpRequest, HttpResponse, str]:
    """Find the ``jwks_uri`` in the issuer's metadata (OpenID Connect, then RFC 8414)."""
    tried: list[str] = []
    for url in discovery_urls(target.issuer):
        response = yield from _get(target, url, {"Accept": "application/json"}, "metadata")
        if 400 <= response.status < 500:
            tried.append(f"{url} answered HTTP {response.status}")
            continue
        if response.status != 200:
            raise FetchError("http_status", f"{url} answered HTTP {response.status}")
        jwks_uri = jwks_uri_from(_json_object(response, "metadata"), target.issuer, url)
        check_url(jwks_uri, target, "the jwks_uri")
        return jwks_uri
    raise FetchError("no_metadata", "no discovery document: " + "; ".join(tried))


def key_set_flow(target: FetchTarget, ticket: FetchTicket) -> Flow:
    """Everything one fetch decides; yields requests, receives responses, returns keys.

    Raises:
        FetchError: Whatever went wrong, as a stable ``kind`` and a message.
    """
    jwks_uri = ticket.jwks_uri
    if jwks_uri is None:
        jwks_uri = yield from _discover(target)
    headers = {"Accept": _JWKS_ACCEPT}
    if ticket.etag:
        headers["If-None-Match"] = ticket.etag
    if ticket.last_modified:
        headers["If-Modified-Since"] = ticket.last_modified
    response = yield from _get(target, jwks_uri, headers, "the JWK Set")
    lifetime = server_lifetime(response.headers)
    etag = response.headers.get("etag")
    last_modified = response.headers.get("last-modified")
    if response.status == 304 and (ticket.etag or ticket.last_modified):
        return NotModified(lifetime, jwks_uri, etag, last_modified)
    if response.status != 200:
        raise FetchError(
            "http_status",
            f"{jwks_uri} answered HTTP {response.status}",
            rediscover=response.status in (404, 410),
        )
    digest = hashlib.sha256(response.body).digest()
    if digest == ticket.digest:
        return NotModified(lifetime, jwks_uri, etag, last_modified)
    document = _json_object(response, "the JWK Set")
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise FetchError("not_jwks", f"{jwks_uri} is not a JWK Set (no 'keys' array)")
    if len(entries) > target.max_keys:
        raise FetchError(
            "too_many_keys", f"{jwks_uri} holds {len(entries)} keys, more than {target.max_keys}"
        )
    try:
        key_set = KeySet.from_jwks(document, target.algorithms, max_keys=target.max_keys)
    except ValueError as exc:
        raise FetchError("not_jwks", f"{jwks_uri}: {exc}") from exc
    if not key_set.keys:
        reasons = "; ".join(f"{kid}: {why}" for kid, why in key_set.skipped) or "it is empty"
        raise FetchError("no_usable_keys", f"{jwks_uri} holds no usable key ({reasons})")
    return Fetched(key_set, lifetime, jwks_uri, etag, last_modified, digest)


# -- the drivers ----------------------------------------------------------------------------


class _Reader:
    """Collects one response within the size limit and the deadline."""

    def __init__(self, target: FetchTarget, url: str, deadline: float) -> None:
        self.url = url
        self.limit = target.max_bytes
        self.timeout = target.timeout
        self.deadline = deadline
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.size = 0

    def begin(self, response: httpx.Response) -> bool:
        """Take status and headers; True when the body is wanted."""
        self.status = response.status_code
        for name in _KEPT_HEADERS:
            value = response.headers.get(name)
            if value is not None:
                self.headers[name] = value
        if self.status != 200:
            return False
        length = _digits(response.headers.get("content-length", ""))
        if length is not None and length > self.limit:
            raise self._too_large()
        return True

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise self._too_large()
        if time.monotonic() > self.deadline:
            raise FetchError("timeout", f"{self.url} did not finish within {self.timeout:g}s")
        self.chunks.append(chunk)

    def response(self) -> HttpResponse:
        return HttpResponse(self.url, self.status, self.headers, b"".join(self.chunks))

    def _too_large(self) -> FetchError:
        return FetchError("too_large", f"{self.url} sent more than {self.limit} bytes")


def _transport_error(exc: BaseException, url: str, timeout: float) -> FetchError:
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return FetchError("timeout", f"{url} did not answer within {timeout:g}s")
    return FetchError("network", f"{url}: {type(exc).__name__}: {exc}")


_TRANSPORT_ERRORS = (httpx.HTTPError, httpx.InvalidURL, OSError)


def _client_options(target: FetchTarget, *, keepalive: int) -> dict[str, Any]:
    return {
        "timeout": httpx.Timeout(target.timeout),
        "follow_redirects": False,  # the flow decides, host by host
        "headers": _CLIENT_HEADERS,
        "limits": httpx.Limits(max_connections=4, max_keepalive_connections=keepalive),
    }


def _deadline_passed(url: str, target: FetchTarget) -> FetchError:
    return FetchError("timeout", f"fetching {url} took longer than {target.budget:g}s in all")


def _outcome_of(end: StopIteration | FetchError) -> FetchOutcome:
    """What a driven flow came to: its return value, or the ``Failed`` outcome of the
    ``FetchError`` (raised by the flow or by the exchange) that stopped it."""
    if isinstance(end, FetchError):
        return end.outcome()
    outcome: Fetched | NotModified = end.value
    return outcome


class SyncDriver:
    """Runs fetch flows over one reused ``httpx.Client``; one sync fetch at a time."""

    def __init__(self, target: FetchTarget) -> None:
        self._target = target
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None

    def single_flight(
        self,
        done: Callable[[], bool],
        *,
        wait: bool,
        patience: float,
        fetch: Callable[[], None],
    ) -> bool:
        """Run ``fetch`` unless another caller's fetch is running or ``done()`` already holds.

        With ``wait``, block (up to ``patience`` seconds) for the running fetch; without, give up at
        once if one is running. Returns True when a fetch completed during the call.
        """
        acquired = self._lock.acquire(timeout=patience) if wait else self._lock.acquire(False)
        if not acquired:
            return False
        try:
            if not done():
                fetch()
            return True
        finally:
            self._lock.release()

    def run(self, flow: Flow) -> FetchOutcome:
        """Drive ``flow`` to its outcome."""
        deadline = time.monotonic() + self._target.budget
        try:
            request = next(flow)
            while True:
                request = flow.send(self._exchange(request, deadline))
        except (StopIteration, FetchError) as end:
            return _outcome_of(end)
        finally:
            flow.close()

    def _exchange(self, request: HttpRequest, deadline: float) -> HttpResponse:
        target = self._target
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _deadline_passed(request.url, target)
        client = self._client
        if client is None:
            client = self._client = httpx.Client(**_client_options(target, keepalive=2))
        reader = _Reader(target, request.url, min(deadline, time.monotonic() + target.timeout))
        try:
            with client.stream(
                "GET", request.url, headers=request.headers, timeout=min(target.timeout, remaining)
            ) as response:
                if reader.begin(response):
                    for chunk in response.iter_bytes():
                        reader.feed(chunk)
        except _TRANSPORT_ERRORS as exc:
            raise _transport_error(exc, request.url, target.timeout) from exc
        return reader.response()

    def close(self) -> None:
        """Close the HTTP client (a later fetch opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def after_fork(self) -> None:
        """In a forked child: a new lock, and the parent's pooled connections left to it."""
        self._lock = threading.Lock()
        self._client = None  # dropped, not closed: its sockets are shared with the parent


class AsyncDriver:
    """Runs fetch flows over one reused ``httpx.AsyncClient``; one shared task per fetch.

    An ``AsyncClient`` and its tasks belong to one event loop; used from another loop, the
    driver starts afresh there.
    """

    def __init__(self, target: FetchTarget) -> None:
        self._target = target
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._client, self._task = loop, None, None
        return loop

    async def single_flight(
        self,
        done: Callable[[], bool],
        *,
        wait: bool,
        patience: float,
        fetch: Callable[[], Coroutine[Any, Any, None]],
    ) -> bool:
        """Start ``fetch`` as a task unless one is running or ``done()`` already holds.

        With ``wait``, wait (up to ``patience`` seconds) for the running task; a waiter that is
        cancelled never cancels the fetch others share. Returns True when a fetch completed
        during the call.
        """
        loop = self._bind()
        task = self._task
        if task is None or task.done():
            if done():
                return True
            task = self._task = loop.create_task(fetch())
        if not wait:
            return False
        finished, _ = await asyncio.wait({task}, timeout=patience)
        return bool(finished)

    async def run(self, flow: Flow) -> FetchOutcome:
        """Drive ``flow`` to its outcome."""
        deadline = time.monotonic() + self._target.budget
        try:
            request = next(flow)
            while True:
                request = flow.send(await self._exchange(request, deadline))
        except (StopIteration, FetchError) as end:
            return _outcome_of(end)
        finally:
            flow.close()

    async def _exchange(self, request: HttpRequest, deadline: float) -> HttpResponse:
        target = self._target
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _deadline_passed(request.url, target)
        self._bind()
        client = self._client
        if client is None:
            # No idle connections are kept: fetches are minutes apart, and a client left behind
            # by a finished event loop then holds no socket.
            client = self._client = httpx.AsyncClient(**_client_options(target, keepalive=0))
        bound = min(target.timeout, remaining)
        reader = _Reader(target, request.url, time.monotonic() + bound)
        try:
            async with asyncio.timeout(bound):
                async with client.stream("GET", request.url, headers=request.headers) as response:
                    if reader.begin(response):
                        async for chunk in response.aiter_bytes():
                            reader.feed(chunk)
        except _TRANSPORT_ERRORS as exc:
            raise _transport_error(exc, request.url, target.timeout) from exc
        return reader.response()

    async def aclose(self) -> None:
        """Cancel a running fetch and close the HTTP client, if they belong to this loop."""
        task, client, loop = self._task, self._client, self._loop
        self._task = self._client = None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - aclose is awaited, so a loop runs
            running = None
        if loop is not running:
            return  # they belong to another (perhaps closed) loop: nothing can be awaited
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
        if client is not None:
            await client.aclose()

    def drop(self) -> None:
        """Forget the client and task without awaiting (a sync ``close()`` cannot await)."""
        self._task = self._client = None


def failed_internally(exc: BaseException) -> Failed:
    """The outcome of a fetch that raised something unexpected (a bug, not the server)."""
    return Failed("internal", f"{type(exc).__name__}: {exc}")
