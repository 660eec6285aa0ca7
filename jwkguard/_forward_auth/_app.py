"""The forward-auth ASGI app: gateways ask it whether a request may pass.

Endpoints:
    ``/auth``           ``gateway = "nginx"`` (``auth_request``) or ``"traefik"``
                        (``ForwardAuth``): the original request is described by that gateway's
                        headers only (see ``_original``).
    ``/envoy/...``      ``gateway = "envoy"`` (``ext_authz`` HTTP service with
                        ``path_prefix: /envoy``): the original method, path and ``Host``
                        arrive as they were.
    ``/healthz``        200 when every issuer has usable keys, else 503.
    ``/metrics``        Prometheus text format (with ``prometheus_client``).
    ``/.well-known/oauth-protected-resource[/path]``  the RFC 9728 metadata document, with
                        ``resource`` configured (its original path is also let through).

Only peers in ``server.trusted_proxies`` may ask (others get 403 ``untrusted_peer``).

Answers: 200 with ``X-Auth-Subject``, ``X-Auth-Scopes`` and the configured claim headers (each
encoded by ``_identity``), or the RFC 6750 401/403 with ``WWW-Authenticate``, 400 for a
malformed or ambiguous request, 403 when no rule names the method, 503 with ``Retry-After``
when no keys can be had. Behind nginx, whose ``auth_request`` drops the subrequest's body, a
refusal also carries its JSON body in ``X-Auth-Error-Body`` for the error location to return.

Sender-constrained tokens: the ``DPoP`` header comes with the original request's headers, and
the scheme in ``X-Forwarded-Proto`` (``https`` when absent), so the proof is checked against
the URL the client addressed; a client certificate comes in the ``[sender]``
``client_cert_header`` from a trusted gateway (nginx ``$ssl_client_escaped_cert``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Generic, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._claims_result import Claims
from .._events import EventHandler, log_event
from .._settings import build_validator
from .._validator import Validator
from ..errors import ConfigurationError, InvalidRequest, JWKGuardError
from ..fleet._settings import Fleet, wire_validator
from ..lifecycle._audit import AuditTrail, fan_out, token_hash
from ..metrics._prometheus import PrometheusMetrics, issuer_status
from ..pipeline._bearer import ErrorResponse
from ..pipeline._pipeline import RoutePolicy
from ..pipeline._request_view import HeaderReader, IndexedHeaders, RequestView
from ..pipeline._resource import ResourceMetadata, resource_identifier
from ..sender._settings import build_sender_settings
from ._config import ServerConfig
from ._identity import encode_list, header_value
from ._original import OriginalRequest, reader_for
from ._routes import AmbiguousPath, MethodNotNamed, RouteRule, normalise_host, normalise_path

__all__ = ["ForwardAuthApp", "create_app"]

logger = logging.getLogger("jwkguard.forward_auth")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_NO_STORE = {"Cache-Control": "no-store"}
# Envoy's ext_authz only replaces the identity headers an answer carries; the others it
# removes from the forwarded request only when named here (after setting the carried ones).
_ENVOY_REMOVE = "x-envoy-auth-headers-to-remove"
_AUTHENTICATE = RouteRule()
_WARM_UP_TIMEOUT = 10.0
_HEALTH_RETRY_INTERVAL = 5.0
_HEALTH_RETRY_TIMEOUT = 2.0
# Entries of each per-server memo (peers, route answers, identity headers); a memo that
# fills up starts over, so a client sending ever new paths costs memory only up to this.
_MEMO_ENTRIES = 4096
# Longer targets are decided each time: a memo of 4096 targets of 60 KB each (Envoy takes that
# much) would hold hundreds of MB.
_MEMO_TARGET = 2048

K = TypeVar("K")
V = TypeVar("V")


class BoundedMemo(Generic[K, V]):
    """A dict that forgets everything when it holds ``limit`` entries (cheap, bounded)."""

    __slots__ = ("_entries", "_limit")

    def __init__(self, limit: int) -> None:
        self._entries: dict[K, V] = {}
        self._limit = limit

    def get(self, key: K) -> V | None:
        return self._entries.get(key)

    def remember(self, key: K, value: V) -> V:
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[key] = value
        return value


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _denied(reason: str, description: str) -> Response:
    return JSONResponse(
        {"error": "access_denied", "error_description": description, "reason": reason},
        status_code=403,
        headers=_NO_STORE,
    )


def _carry_body(response: Response) -> None:
    """Copy a refusal's JSON body into ``X-Auth-Error-Body`` (ASCII, one line) for nginx."""
    try:
        body = json.loads(bytes(response.body))
    except ValueError:
        return
    response.headers["X-Auth-Error-Body"] = json.dumps(body, separators=(",", ":"))


def _error(response: ErrorResponse) -> Response:
    return Response(
        response.body_bytes(),
        status_code=response.status_code,
        headers={**response.headers, **_NO_STORE},
        media_type="application/json",
    )


class ForwardAuthApp:
    """An ASGI app answering gateways' authorization subrequests.

    Args:
        config: The server configuration.
        validator: A ready validator (tests); default: built from ``config.validator``, with
            the fleet's lifecycle when ``config.lifecycle`` is set (not with a ready one).
        metrics: Metrics to record into; default: a fresh registry when ``config.metrics``.
        on_event: Extra event handler for the validator built from the configuration.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        validator: Validator | None = None,
        metrics: PrometheusMetrics | None = None,
        on_event: EventHandler | None = None,
    ) -> None:
        self.config = config
        if metrics is None and config.metrics:
            metrics = _default_metrics()
        self.metrics = metrics
        self.audit = AuditTrail() if config.audit else None
        self.fleet: Fleet | None = None
        if validator is None:
            handlers: list[EventHandler] = [log_event]
            if self.audit is not None:
                handlers.append(self.audit)
            if metrics is not None:
                handlers.append(metrics.on_event)
            if on_event is not None:
                handlers.append(on_event)
            if config.lifecycle is not None:
                self.fleet = Fleet(config.lifecycle)
            validator = build_validator(
                config.validator,
                on_event=fan_out(*handlers),
                lifecycle=None if self.fleet is None else self.fleet.lifecycle,
                default_audience=resource_identifier(config.resource),
            )
        elif config.lifecycle is not None:
            raise ConfigurationError(
                "[lifecycle] gives the validator its lifecycle: build the validator from "
                "[validator], or leave [lifecycle] out"
            )
        wire_validator(validator, self.fleet, metrics)
        self.sender = build_sender_settings(self._sender_options(config))
        self._responses = None if metrics is None else _responses_counter(metrics)
        self.validator = validator
        self._realm = config.realm
        self._reader = reader_for(config.gateway, envoy_prefix=config.envoy_prefix)
        self._endpoint = config.envoy_prefix if config.gateway == "envoy" else "/auth"
        self._trusted = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in config.trusted_proxies
        )
        self._error_body_header = config.gateway == "nginx"
        self._identity_names = (
            ("X-Auth-Subject", "X-Auth-Scopes", *config.claim_headers)
            if config.gateway == "envoy"
            else ()
        )
        self._allowed = self._without_forged_identity(dict(_NO_STORE))
        self._last_health_retry = 0.0
        self.pipeline = self.sender.pipeline(
            validator,
            realm=config.realm,
            allow_query_token=config.allow_query_token,
            resource=config.resource,
        )
        self.resource = self.pipeline.resource
        self._policies: dict[RouteRule, RoutePolicy] = {}
        self._counters: dict[int, Any] = {}
        self._peers: BoundedMemo[str, bool] = BoundedMemo(_MEMO_ENTRIES)
        self._routes_seen: BoundedMemo[
            tuple[str, str, str], tuple[RouteRule | None, str, str] | Exception
        ] = BoundedMemo(_MEMO_ENTRIES)
        self._identities: BoundedMemo[int, tuple[object, dict[str, str]]] = BoundedMemo(
            _MEMO_ENTRIES
        )
        for route in (*config.routes.routes, _AUTHENTICATE):
            self.policy(route)  # a rule that cannot be enforced fails at start-up

    def _sender_options(self, config: ServerConfig) -> dict[str, Any]:
        """``[sender]``, with DPoP proofs remembered in the fleet's Redis when there is one."""
        options = dict(config.sender)
        if self.fleet is not None and "dpop" in options:
            options["dpop"] = self.fleet.with_dpop_replay(options["dpop"])
        return options

    # -- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        path = scope["path"]
        request = Request(scope)
        response: Response
        endpoint = self._endpoint
        if path == endpoint or (endpoint != "/auth" and path.startswith(endpoint + "/")):
            response = await self.auth(request)
            if self._error_body_header and response.status_code != 200:
                _carry_body(response)
        else:
            if path == "/healthz":
                response = await self.healthz()
            elif self.resource is not None and self.resource.serves(path):
                response = metadata_page(self.resource)
            elif path == "/metrics":
                response = self.metrics_page()
            else:
                response = JSONResponse({"error": "not_found"}, status_code=404)
            await response(scope, receive, send)
            return
        if self._responses is not None:
            status = response.status_code
            counter = self._counters.get(status)
            if counter is None:
                counter = self._counters[status] = self._responses.labels(str(status))
            counter.inc()
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.validator.aclose()
                if self.sender.introspector is not None:
                    await self.sender.introspector.aclose()
                if self.fleet is not None:
                    await self.fleet.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        """Load the lifecycle replica and every issuer's keys (bounded; failures logged).

        Without the lifespan (an app mounted in another), the fleet's store starts on its
        first use instead.
        """
        if self.fleet is not None:
            await self.fleet.store.astart()
            if not self.fleet.store.available:
                logger.warning("the lifecycle store is unreachable; it keeps retrying")
        try:
            await asyncio.wait_for(self.validator.awarm_up(), _WARM_UP_TIMEOUT)
        except (JWKGuardError, TimeoutError, OSError) as exc:
            logger.warning("key warm-up failed; /healthz stays unready until keys load: %s", exc)
        for route in self.config.routes.routes:
            logger.info("route %s", route.describe())

    # -- the decision ---------------------------------------------------------------------

    def trusted(self, request: Request) -> bool:
        """True if the peer of the connection is one of ``server.trusted_proxies``."""
        if request.client is None:
            return False
        host = request.client.host
        verdict = self._peers.get(host)
        if verdict is None:
            verdict = self._peers.remember(host, self._trusted_address(host))
        return verdict

    def _trusted_address(self, host: str) -> bool:
        try:
            peer = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
            peer = peer.ipv4_mapped
        return any(peer in network for network in self._trusted)

    async def auth(self, request: Request) -> Response:
        """The gateway's question: read the original request its way, then decide."""
        if not self.trusted(request):
            logger.warning(
                "refused a request from %s: not in server.trusted_proxies",
                request.client.host if request.client else "an unknown peer",
            )
            return _denied("untrusted_peer", "The peer is not a trusted gateway")
        headers = IndexedHeaders(request.scope["headers"])
        try:
            original = self._reader.read(headers, request.scope)
        except InvalidRequest as exc:
            return _error(self.pipeline.refusal(exc))
        return await self.decide(request, original, headers)

    async def decide(
        self, request: Request, original: OriginalRequest, headers: HeaderReader | None = None
    ) -> Response:
        """Allow or refuse the ``original`` request."""
        method, host = original.method, original.host
        try:
            route, path, query = self.route_for(host, original.target, method)
        except AmbiguousPath as exc:
            return _error(self.pipeline.refusal(InvalidRequest(str(exc), reason="ambiguous_path")))
        except MethodNotNamed:
            return _denied("method_not_allowed", f"No rule for this path names the method {method}")
        if route is None:
            if self.config.unmatched == "deny":
                return _denied("no_route", "No rule matches this request")
            route = _AUTHENTICATE
        resource = self.resource
        if resource is not None and method in ("GET", "HEAD") and resource.serves(path):
            return Response(status_code=200, headers=self._allowed)  # RFC 9728: public
        view = RequestView(
            method=method,
            headers=headers or IndexedHeaders(request.scope["headers"]),
            query=query,
            url=lambda: original.url,
            client=request.client.host if request.client else None,
        )
        decision = await self.pipeline.arun(view, self.policy(route))
        if decision.response is not None:
            if decision.credentials is not None and decision.error is not None:
                logger.debug(
                    "refused %s %s%s: %s (token %s)",
                    method,
                    host,
                    path,
                    decision.error.reason,
                    token_hash(decision.credentials.token),
                )
            return _error(decision.response)
        if decision.claims is None:  # an anonymous route, asked without a token
            return Response(status_code=200, headers=self._allowed)
        return Response(status_code=200, headers=self.identity_headers(decision.claims))

    def route_for(self, host: str, target: str, method: str) -> tuple[RouteRule | None, str, str]:
        """The rule for ``method host target``, with the canonical path and the raw query.

        The answer depends only on these three strings and the configuration, so it is kept
        (bounded, for targets of at most 2048 characters): a gateway asks about the same few
        paths over and over.

        Raises:
            AmbiguousPath: The target could be read two ways.
            MethodNotNamed: The rules of the target's prefix do not name the method.
        """
        key = (host, target, method)
        known = self._routes_seen.get(key)
        if known is None:
            try:
                normalised = normalise_path(target)
                route = self.config.routes.resolve(normalise_host(host), normalised, method)
                known = (route, normalised.path, normalised.query)
            except (AmbiguousPath, MethodNotNamed) as exc:
                known = exc
            if len(target) <= _MEMO_TARGET:
                self._routes_seen.remember(key, known)
        if isinstance(known, Exception):
            # A fresh traceback each time: re-raising one instance would grow its traceback.
            raise known.with_traceback(None)
        return known

    def policy(self, route: RouteRule) -> RoutePolicy:
        """What ``route`` demands, as the request pipeline reads it (built once per route)."""
        policy = self._policies.get(route)
        if policy is None:
            policy = RoutePolicy(scopes=route.scopes, optional=route.anonymous, **route.demands())
            self.pipeline.check_policy(policy)
            self._policies[route] = policy
        return policy

    def identity_headers(self, claims: Claims) -> dict[str, str]:
        """``X-Auth-Subject``, ``X-Auth-Scopes`` and the configured claim headers.

        Every value goes through the one encoding of ``_identity`` (reversible, never fails).
        Every hit of a token in the verified-token cache builds its ``Claims`` from the same
        cache entry (``Claims._origin``), so the headers are kept per entry (bounded; checked
        by identity, never by equality). Claims from a full validation are encoded each time.
        """
        origin = claims._origin
        if origin is None:
            return self._encode_identity(claims)
        known = self._identities.get(id(origin))
        if known is not None and known[0] is origin:
            return known[1]
        headers = self._encode_identity(claims)
        self._identities.remember(id(origin), (origin, headers))
        return headers

    def _encode_identity(self, claims: Claims) -> dict[str, str]:
        headers = dict(_NO_STORE)
        subject = header_value(claims.subject)
        if subject is not None:
            headers["X-Auth-Subject"] = subject
        headers["X-Auth-Scopes"] = encode_list(sorted(claims.scopes), " ")
        for name, claim in self.config.claim_headers.items():
            value = header_value(_claim(claims, claim))
            if value is not None:
                headers[name] = value
        return self._without_forged_identity(headers)

    def _without_forged_identity(self, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` of a 200, naming for Envoy the identity headers it does not set.

        Envoy (``allowed_upstream_headers``) would pass a client's own copy of those on.
        """
        sent = {name.lower() for name in headers}
        absent = [name for name in self._identity_names if name.lower() not in sent]
        if absent:
            headers[_ENVOY_REMOVE] = ", ".join(absent)
        return headers

    # -- operations -----------------------------------------------------------------------

    async def healthz(self) -> Response:
        """Ready (200) only when every issuer has usable keys."""
        statuses = issuer_status(self.validator)
        if not all(status.ready for status in statuses):
            now = time.monotonic()
            if now - self._last_health_retry >= _HEALTH_RETRY_INTERVAL:
                self._last_health_retry = now
                try:
                    await asyncio.wait_for(self.validator.awarm_up(), _HEALTH_RETRY_TIMEOUT)
                except (JWKGuardError, TimeoutError, OSError) as exc:
                    logger.debug("health check warm-up failed: %s", exc)
                statuses = issuer_status(self.validator)
        ready = all(status.ready for status in statuses)
        return JSONResponse(
            {
                "status": "ready" if ready else "unavailable",
                "issuers": [status.as_dict() for status in statuses],
            },
            status_code=200 if ready else 503,
            headers=_NO_STORE,
        )

    def metrics_page(self) -> Response:
        """The Prometheus exposition of this server's registry."""
        if self.metrics is None:
            return JSONResponse(
                {"error": "not_found", "error_description": "metrics are disabled"},
                status_code=404,
            )
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(
            generate_latest(self.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST, **_NO_STORE},
        )


def metadata_page(resource: ResourceMetadata) -> Response:
    """The RFC 9728 metadata document."""
    body = resource.body_bytes()
    headers = dict(resource.wire_headers(body))
    del headers["Content-Length"]
    return Response(body, headers=headers, media_type="application/json")


def _default_metrics() -> PrometheusMetrics | None:
    try:
        from prometheus_client import CollectorRegistry
    except ImportError:
        logger.warning("metrics are on but prometheus_client is missing: /metrics is disabled")
        return None
    return PrometheusMetrics(registry=CollectorRegistry())


def _responses_counter(metrics: PrometheusMetrics) -> Any:
    from prometheus_client import Counter

    return Counter(
        "forward_auth_responses",
        "Authorization answers of the forward-auth server by HTTP status.",
        ["status"],
        namespace="jwkguard",
        registry=metrics.registry,
    )


def create_app(
    config: ServerConfig,
    *,
    validator: Validator | None = None,
    metrics: PrometheusMetrics | None = None,
) -> ForwardAuthApp:
    """The forward-auth ASGI app for ``config``."""
    return ForwardAuthApp(config, validator=validator, metrics=metrics)
