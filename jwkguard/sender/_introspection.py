"""Token introspection (RFC 7662) for opaque tokens and a hybrid mode for high-value routes.

authlib prepares the request and the client authentication (``client_secret_basic``,
``client_secret_post``, ``private_key_jwt``); jwkguard's own httpx clients carry it, so the
sync and async drivers share one decision core: a result cache keyed by token hash and a
circuit breaker.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
from collections.abc import AsyncIterable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .._claims_result import Claims, read_scopes
from .._events import Event, EventHandler
from .._issuer import is_loopback_host
from .._policy import check_confirmation
from ..errors import ConfigurationError, IntrospectionUnavailable, InvalidClaim, LifecycleError

if TYPE_CHECKING:
    import httpx

__all__ = ["IntrospectionUnavailable", "Introspector"]

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]
_MAX_RESPONSE_BYTES = 64 * 1024
_MAX_RETRY_AFTER = 300.0
# RFC 7662 section 2.3 / RFC 6749 section 5.2: a 400 carries the error about the request (here:
# the one token in it); 413, 414 and 431 refuse a token too large to carry.
_PER_TOKEN_STATUSES = frozenset({400, 413, 414, 431})
_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})


@dataclass(slots=True)
class _Entry:
    claims: Claims | None  # None: the token is inactive, or the server refused to judge it
    expires_at: float
    refused: str | None = None  # the server's error code for a per-token 4xx


@dataclass(slots=True, kw_only=True, eq=False)
class _IntrospectionState:
    """Sans-IO core: the cache and the breaker, told the time, never doing IO."""

    max_cache_ttl: float
    inactive_ttl: float
    failure_threshold: int
    reset_after: float
    max_entries: int
    cache: dict[str, _Entry] = field(default_factory=dict, init=False)
    failures: int = field(default=0, init=False)
    open_until: float = field(default=0.0, init=False)
    lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def cached(self, key: str, now: float) -> _Entry | None:
        entry = self.cache.get(key)
        if entry is None or entry.expires_at <= now:
            return None
        return entry

    def may_call(self, now: float) -> bool:
        """False while the breaker is open; after ``reset_after`` one trial call goes through."""
        return now >= self.open_until

    def record_failure(self, now: float, retry_after: float | None = None) -> bool:
        """One outage answer (transport error, timeout, 5xx, 429); True if the breaker opened.

        Only outages count: an answer about one token never reaches here, so no client can
        open the breaker with junk tokens. ``Retry-After`` on a 429 or 503 is back-pressure:
        the breaker opens at once and stays open at least that long (bounded).
        """
        with self.lock:
            was_open = now < self.open_until
            self.failures += 1
            if retry_after is not None:
                wait = min(max(retry_after, 0.0), _MAX_RETRY_AFTER)
                self.open_until = max(self.open_until, now + wait)
            if self.failures >= self.failure_threshold:
                # Jitter keeps a fleet from retrying in lockstep.
                jittered = now + self.reset_after * (1 + random.random() / 10)  # noqa: S311
                self.open_until = max(self.open_until, jittered)
            return not was_open and now < self.open_until

    def classify(self, status: int, error: str | None) -> str:
        """What an answer other than 200 means: ``outage``, ``token`` or ``client``.

        - ``outage``: 5xx and 429; the endpoint cannot answer now.
        - ``client``: the endpoint refused *this resource server* (401, 403, 404, 405, ...,
          or ``invalid_client`` / ``unauthorized_client`` in a 400): the same for every token,
          a configuration problem, not an outage.
        - ``token``: a 4xx about the token itself (400 ``invalid_request``,
          ``unsupported_token_type``, 413, 414, 431): that token's answer.
        """
        if status >= 500 or status == 429:
            return "outage"
        if status in _PER_TOKEN_STATUSES and error not in _CLIENT_ERRORS:
            return "token"
        return "client"

    def record_refusal(self, key: str, error: str, now: float) -> bool:
        """The server would not judge this token: cached like ``active: false``.

        The endpoint answered, so it is up: this ends an outage like any answer does.
        """
        with self.lock:
            recovered = self._answered()
            self._store(key, _Entry(None, now + self.inactive_ttl, error), now)
            return recovered

    def record_result(self, key: str, claims: Claims | None, now: float) -> bool:
        """An answer about the token; True if it ended an outage (the breaker had opened)."""
        with self.lock:
            recovered = self._answered()
            if claims is None:
                expires = now + self.inactive_ttl
            else:
                expires = now + self.max_cache_ttl
                exp: Any = claims.get("exp")
                if type(exp) in (int, float):
                    # Compared as is: float() overflows on an integer beyond its range.
                    expires = min(expires, exp)
            self._store(key, _Entry(claims, expires), now)
            return recovered

    def _answered(self) -> bool:
        recovered = self.open_until > 0.0
        self.failures = 0
        self.open_until = 0.0
        return recovered

    def _store(self, key: str, entry: _Entry, now: float) -> None:
        if len(self.cache) >= self.max_entries:
            self.cache = {k: v for k, v in self.cache.items() if v.expires_at > now}
            if len(self.cache) >= self.max_entries:
                self.cache.clear()
        self.cache[key] = entry


class Introspector:
    """Asks the authorization server whether a token is active (RFC 7662).

    Args:
        endpoint: The introspection endpoint URL (``introspection_endpoint`` in discovery).
        client_id: This resource server's client id.
        client_secret: The secret for ``client_secret_basic``/``client_secret_post``.
        private_key: A private JWK (dict) or PEM for ``private_key_jwt``.
        auth_method: How this client authenticates to the endpoint.
        audiences: If set, an ``aud`` in the response must hold one of these.
        timeout: Bound on each HTTP exchange as a whole (connect to last byte), in seconds.
        max_cache_ttl: Longest an active result is reused (never past the token's ``exp``).
        inactive_ttl: How long an ``active: false`` answer is reused.
        failure_threshold: Consecutive failures that open the circuit breaker.
        reset_after: How long the breaker stays open before one trial call.
        fail_open: During an outage of the endpoint (transport errors, timeouts, 5xx, 429,
            or the open breaker), let locally validated tokens through (hybrid mode); by
            default refuse with 503. Only an outage fails open: a 4xx about one token refuses
            that token (401, reason ``introspection_refused``) and an endpoint that rejects
            this resource server itself (401, 403, ``invalid_client``) answers 503
            ``introspection_rejected``, under either policy.
        on_event: Receives ``introspection_unavailable`` (the breaker opened),
            ``introspection_recovered``, ``introspection_refused`` (a per-token 4xx) and
            ``introspection_rejected`` events (``issuer`` is ``"*"``, ``detail`` has the
            endpoint, the status and the server's ``error``; never the token).
        clock: A callable returning unix time; default ``time.time``.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        client_id: str,
        client_secret: str | None = None,
        private_key: Mapping[str, Any] | str | bytes | None = None,
        auth_method: AuthMethod = "client_secret_basic",
        audiences: Collection[str] | None = None,
        timeout: float = 5,
        max_cache_ttl: float = 60,
        inactive_ttl: float = 5,
        failure_threshold: int = 3,
        reset_after: float = 30,
        fail_open: bool = False,
        max_entries: int = 10_000,
        allow_insecure_http: bool = False,
        on_event: EventHandler | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not endpoint.startswith("https://") and not (
            endpoint.startswith("http://") and (is_loopback_host(endpoint) or allow_insecure_http)
        ):
            raise ConfigurationError("the introspection endpoint must use https")
        if auth_method == "private_key_jwt":
            if private_key is None:
                raise ConfigurationError("private_key_jwt needs a private_key")
        elif client_secret is None:
            raise ConfigurationError(f"{auth_method} needs a client_secret")
        self.endpoint = endpoint
        self.audiences = frozenset(audiences) if audiences is not None else None
        self.fail_open = fail_open
        self.timeout = timeout
        self.on_event = on_event
        self.clock = clock or time.time
        self._client_auth = _client_auth(
            client_id, client_secret, private_key, auth_method, endpoint
        )
        self._state = _IntrospectionState(
            max_cache_ttl=max_cache_ttl,
            inactive_ttl=inactive_ttl,
            failure_threshold=failure_threshold,
            reset_after=reset_after,
            max_entries=max_entries,
        )
        self._client: httpx.Client | None = None
        self._async_client: httpx.AsyncClient | None = None
        self._async_loop: object = None

    # -- drivers --------------------------------------------------------------------------

    def introspect(self, token: str) -> Claims | None:
        """The active token's claims; ``LifecycleError`` if inactive.

        Returns None only when the endpoint cannot be asked and the policy is fail-open.
        """
        import httpx  # loaded on first use, never at `import jwkguard`

        key, now, decided = self._before(token)
        if decided is not _ASK:
            return self._outcome(decided)
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
        answer = _Answer(self.timeout)
        try:
            url, headers, body = self._request(token)
            with self._client.stream("POST", url, headers=headers, content=body) as response:
                if answer.begin(response):
                    answer.read(response.iter_bytes())
        except httpx.HTTPError:
            return self._failed(now)
        return self._after(key, answer, now)

    async def aintrospect(self, token: str) -> Claims | None:
        """Same as :meth:`introspect`, without blocking the event loop."""
        import asyncio

        import httpx

        key, now, decided = self._before(token)
        if decided is not _ASK:
            return self._outcome(decided)
        client = self._aclient()
        answer = _Answer(self.timeout)
        try:
            url, headers, body = self._request(token)
            async with asyncio.timeout(self.timeout):
                async with client.stream("POST", url, headers=headers, content=body) as response:
                    if answer.begin(response):
                        await answer.aread(response.aiter_bytes())
        except (httpx.HTTPError, TimeoutError):
            return self._failed(now)
        return self._after(key, answer, now)

    def close(self) -> None:
        """Close the sync HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close both HTTP clients (the async one if it belongs to the running loop)."""
        import asyncio

        self.close()
        client, self._async_client = self._async_client, None
        if client is not None and self._async_loop is asyncio.get_running_loop():
            await client.aclose()

    def _aclient(self) -> httpx.AsyncClient:
        import asyncio  # loaded already by the running loop; kept off `import jwkguard`

        import httpx

        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_loop is not loop:
            # A client's connections belong to the loop that opened them, and a loop may end
            # with the request (Django runs an async view under WSGI in a loop of its own):
            # each loop gets its own client, which keeps no idle connection behind.
            self._async_loop = loop
            self._async_client = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return self._async_client

    @property
    def breaker_open(self) -> bool:
        """True while failures keep the endpoint from being called."""
        return not self._state.may_call(self.clock())

    # -- shared decisions -----------------------------------------------------------------

    def _before(self, token: str) -> tuple[str, float, object]:
        now = self.clock()
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        entry = self._state.cached(key, now)
        if entry is not None:
            return key, now, entry
        if not self._state.may_call(now):
            return key, now, _UNAVAILABLE
        return key, now, _ASK

    def _outcome(self, decided: object) -> Claims | None:
        if isinstance(decided, _Entry):
            if decided.refused is not None:
                raise _refused()
            if decided.claims is None:
                raise _inactive()
            return decided.claims
        if self.fail_open:
            return None
        raise IntrospectionUnavailable(
            "Token introspection is temporarily unavailable",
            retry_after=self._retry_after(),
        )

    def _retry_after(self) -> int:
        wait = self._state.open_until - self.clock()
        return int(min(max(math.ceil(wait), 1), _MAX_RETRY_AFTER)) if wait > 0 else 5

    def _failed(
        self, now: float, status: int | None = None, retry_after: float | None = None
    ) -> Claims | None:
        if self._state.record_failure(now, retry_after):
            self._emit("introspection_unavailable", now, status=status)
        return self._outcome(_UNAVAILABLE)

    def _emit(self, kind: str, now: float, **detail: Any) -> None:
        if self.on_event is not None:
            self.on_event(Event(kind, "*", now, detail={"endpoint": self.endpoint, **detail}))

    def _request(self, token: str) -> tuple[str, dict[str, str], str]:
        from authlib.oauth2.rfc7009 import prepare_revoke_token_request

        body, headers = prepare_revoke_token_request(token, "access_token", "", {})
        headers["Accept"] = "application/json"
        url, headers, body = self._client_auth.prepare("POST", self.endpoint, headers, body)
        return url, headers, body

    def _after(self, key: str, answer: _Answer, now: float) -> Claims | None:
        status = answer.status
        if status != 200:
            return self._not_ok(key, answer, now)
        if answer.content is None:  # too large, or not finished within the timeout
            return self._failed(now, status)
        try:
            document = json.loads(answer.content)
        except ValueError:
            return self._failed(now, status)
        if not isinstance(document, dict) or not isinstance(document.get("active"), bool):
            return self._failed(now, status)
        claims = self._claims_from(document, now)
        if self._state.record_result(key, claims, now):
            self._emit("introspection_recovered", now, status=status)
        if claims is None:
            raise _inactive()
        return claims

    def _not_ok(self, key: str, answer: _Answer, now: float) -> Claims | None:
        status = answer.status
        error = _error_code(answer.content or b"")
        verdict = self._state.classify(status, error)
        if verdict == "outage":
            return self._failed(now, status, _seconds(answer.retry_after))
        if verdict == "token":
            if self._state.record_refusal(key, error or "invalid_request", now):
                self._emit("introspection_recovered", now, status=status)
            self._emit("introspection_refused", now, status=status, error=error)
            raise _refused()
        # The endpoint refuses this resource server: every token would get the same answer.
        # Not an outage (fail-open does not apply) and not the token's fault.
        self._emit("introspection_rejected", now, status=status, error=error)
        raise IntrospectionUnavailable(
            "Token introspection is temporarily unavailable",
            reason="introspection_rejected",
            retry_after=int(self._state.inactive_ttl) or 1,
        )

    def _claims_from(self, document: dict[str, Any], now: float) -> Claims | None:
        if document["active"] is not True:
            return None
        exp: Any = document.get("exp")
        if type(exp) in (int, float) and exp <= now:
            return None
        if self.audiences is not None and "aud" in document:
            aud = document["aud"]
            # Only strings name an audience (a list may hold anything, unhashable too).
            audiences = (
                {aud}
                if isinstance(aud, str)
                else {a for a in aud if isinstance(a, str)}
                if isinstance(aud, list)
                else set()
            )
            if self.audiences.isdisjoint(audiences):
                raise InvalidClaim(
                    "The access token is not meant for this audience",
                    reason="audience_mismatch",
                    claim="aud",
                )
        if "cnf" in document:
            # RFC 7662 section 2.2 / RFC 8705 section 3.2 / RFC 9449 section 6.2: the binding
            # is reported here; one the sender constraints cannot enforce is refused.
            check_confirmation(document["cnf"])
        return Claims(document, header={}, key_id=None, thumbprint="", scopes=read_scopes(document))


_ASK = object()
_UNAVAILABLE = object()


class _Answer:
    """One answer of the endpoint, read within the size limit and one deadline.

    ``timeout`` bounds the whole exchange, not each read: an endpoint that drips a byte now
    and then, or streams without end, is given up on (``content`` None), never waited for.
    """

    __slots__ = ("_chunks", "complete", "deadline", "retry_after", "size", "status")

    def __init__(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.status = 0
        self.retry_after: str | None = None
        self.size = 0
        self.complete = False
        self._chunks: list[bytes] = []

    def begin(self, response: httpx.Response) -> bool:
        """Take the status and headers; True when the body is worth reading."""
        self.status = response.status_code
        self.retry_after = response.headers.get("Retry-After")
        length = response.headers.get("Content-Length", "").strip()
        return not (length.isdigit() and int(length) > _MAX_RESPONSE_BYTES)

    def read(self, chunks: Iterable[bytes]) -> None:
        """Read the body from ``chunks``, stopping at the size limit or the deadline."""
        self.complete = all(map(self._feed, chunks))

    async def aread(self, chunks: AsyncIterable[bytes]) -> None:
        """:meth:`read` for an async body."""
        async for chunk in chunks:
            if not self._feed(chunk):
                return
        self.complete = True

    def _feed(self, chunk: bytes) -> bool:
        """Keep ``chunk``; False (stop reading) past the size limit or the deadline."""
        self.size += len(chunk)
        if self.size > _MAX_RESPONSE_BYTES or time.monotonic() > self.deadline:
            return False
        self._chunks.append(chunk)
        return True

    @property
    def content(self) -> bytes | None:
        """The whole body, or None when it was not read to its end."""
        return b"".join(self._chunks) if self.complete else None


def _inactive() -> LifecycleError:
    return LifecycleError("The access token is not active", reason="inactive")


def _refused() -> LifecycleError:
    return LifecycleError(
        "The authorization server would not introspect the access token",
        reason="introspection_refused",
    )


def _error_code(body: bytes) -> str | None:
    """The ``error`` of an RFC 6749 section 5.2 error body, if it has a short one."""
    if len(body) > _MAX_RESPONSE_BYTES:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, str) and len(error) <= 64 else None


def _seconds(value: str | None) -> float | None:
    """A ``Retry-After`` in delta-seconds (RFC 9110 section 10.2.3); an HTTP date is ignored."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def _client_auth(
    client_id: str,
    client_secret: str | None,
    private_key: Mapping[str, Any] | str | bytes | None,
    auth_method: AuthMethod,
    endpoint: str,
) -> Any:
    from authlib.oauth2.auth import ClientAuth

    if auth_method == "private_key_jwt":
        from authlib.oauth2.rfc7523 import PrivateKeyJWT
        from joserfc.jwk import JWKRegistry, RSAKey

        alg = "RS256"
        key: Any
        if isinstance(private_key, Mapping):
            key = JWKRegistry.import_key(dict(private_key))
            default = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}.get(
                str(private_key.get("kty"))
            )
            alg = str(private_key.get("alg") or default or alg)
        else:
            key = RSAKey.import_key(private_key or "")
        return ClientAuth(client_id, key, PrivateKeyJWT(endpoint, alg=alg))
    return ClientAuth(client_id, client_secret, auth_method)
