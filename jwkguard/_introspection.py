"""Token introspection (RFC 7662) for opaque tokens and a hybrid mode for high-value routes.

authlib prepares the request and the client authentication (``client_secret_basic``,
``client_secret_post``, ``private_key_jwt``); jwkguard's own httpx clients carry it, so the
sync and async drivers share one decision core: a result cache keyed by token hash and a
circuit breaker.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._claims_result import Claims, read_scopes
from ._issuer import is_loopback_host
from ._policy import check_confirmation
from .errors import ConfigurationError, InvalidClaim, KeysUnavailable, LifecycleError

if TYPE_CHECKING:
    import httpx

__all__ = ["IntrospectionUnavailable", "Introspector"]

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]
_MAX_RESPONSE_BYTES = 64 * 1024


class IntrospectionUnavailable(KeysUnavailable):
    """The introspection endpoint cannot be reached and the policy is fail-closed (503)."""

    default_reason = "introspection_unavailable"


@dataclass(slots=True)
class _Entry:
    claims: Claims | None  # None: the token is inactive
    expires_at: float


class _IntrospectionState:
    """Sans-IO core: the cache and the breaker, told the time, never doing IO."""

    def __init__(
        self,
        *,
        max_cache_ttl: float,
        inactive_ttl: float,
        failure_threshold: int,
        reset_after: float,
        max_entries: int,
    ) -> None:
        self.max_cache_ttl = max_cache_ttl
        self.inactive_ttl = inactive_ttl
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self.max_entries = max_entries
        self.cache: dict[str, _Entry] = {}
        self.failures = 0
        self.open_until = 0.0
        self.lock = threading.Lock()

    def cached(self, key: str, now: float) -> _Entry | None:
        entry = self.cache.get(key)
        if entry is None or entry.expires_at <= now:
            return None
        return entry

    def may_call(self, now: float) -> bool:
        """False while the breaker is open; after ``reset_after`` one trial call goes through."""
        return now >= self.open_until

    def record_failure(self, now: float) -> None:
        with self.lock:
            self.failures += 1
            if self.failures >= self.failure_threshold:
                # Jitter keeps a fleet from retrying in lockstep.
                self.open_until = now + self.reset_after * (1 + random.random() / 10)  # noqa: S311

    def record_result(self, key: str, claims: Claims | None, now: float) -> None:
        with self.lock:
            self.failures = 0
            self.open_until = 0.0
            if claims is None:
                expires = now + self.inactive_ttl
            else:
                expires = now + self.max_cache_ttl
                exp: Any = claims.get("exp")
                if type(exp) in (int, float):
                    expires = min(expires, float(exp))
            if len(self.cache) >= self.max_entries:
                self.cache = {k: v for k, v in self.cache.items() if v.expires_at > now}
                if len(self.cache) >= self.max_entries:
                    self.cache.clear()
            self.cache[key] = _Entry(claims, expires)


class Introspector:
    """Asks the authorization server whether a token is active (RFC 7662).

    Args:
        endpoint: The introspection endpoint URL (``introspection_endpoint`` in discovery).
        client_id: This resource server's client id.
        client_secret: The secret for ``client_secret_basic``/``client_secret_post``.
        private_key: A private JWK (dict) or PEM for ``private_key_jwt``.
        auth_method: How this client authenticates to the endpoint.
        audiences: If set, an ``aud`` in the response must hold one of these.
        timeout: Bound on each HTTP exchange, in seconds.
        max_cache_ttl: Longest an active result is reused (never past the token's ``exp``).
        inactive_ttl: How long an ``active: false`` answer is reused.
        failure_threshold: Consecutive failures that open the circuit breaker.
        reset_after: How long the breaker stays open before one trial call.
        fail_open: When the endpoint cannot be asked, let locally validated tokens through
            (hybrid mode); by default refuse with 503.
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
        try:
            url, headers, body = self._request(token)
            response = self._client.post(url, headers=headers, content=body)
        except httpx.HTTPError:
            return self._failed(now)
        return self._after(key, response, now)

    async def aintrospect(self, token: str) -> Claims | None:
        """Same as :meth:`introspect`, without blocking the event loop."""
        import httpx

        key, now, decided = self._before(token)
        if decided is not _ASK:
            return self._outcome(decided)
        client = self._aclient()
        try:
            url, headers, body = self._request(token)
            response = await client.post(url, headers=headers, content=body)
        except httpx.HTTPError:
            return self._failed(now)
        return self._after(key, response, now)

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
            if decided.claims is None:
                raise _inactive()
            return decided.claims
        if self.fail_open:
            return None
        raise IntrospectionUnavailable("Token introspection is temporarily unavailable")

    def _failed(self, now: float) -> Claims | None:
        self._state.record_failure(now)
        return self._outcome(_UNAVAILABLE)

    def _request(self, token: str) -> tuple[str, dict[str, str], str]:
        from authlib.oauth2.rfc7009 import prepare_revoke_token_request

        body, headers = prepare_revoke_token_request(token, "access_token", "", {})
        headers["Accept"] = "application/json"
        url, headers, body = self._client_auth.prepare("POST", self.endpoint, headers, body)
        return url, headers, body

    def _after(self, key: str, response: httpx.Response, now: float) -> Claims | None:
        if response.status_code != 200 or len(response.content) > _MAX_RESPONSE_BYTES:
            return self._failed(now)
        try:
            document = json.loads(response.content)
        except ValueError:
            return self._failed(now)
        if not isinstance(document, dict) or not isinstance(document.get("active"), bool):
            return self._failed(now)
        claims = self._claims_from(document, now)
        self._state.record_result(key, claims, now)
        if claims is None:
            raise _inactive()
        return claims

    def _claims_from(self, document: dict[str, Any], now: float) -> Claims | None:
        if document["active"] is not True:
            return None
        exp: Any = document.get("exp")
        if type(exp) in (int, float) and exp <= now:
            return None
        if self.audiences is not None and "aud" in document:
            aud = document["aud"]
            audiences = (
                {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
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


def _inactive() -> LifecycleError:
    return LifecycleError("The access token is not active", reason="inactive")


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
