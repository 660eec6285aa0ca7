"""The forward-auth ASGI app: gateways ask it whether a request may pass.

Endpoints:
    ``/auth``           nginx ``auth_request`` and Traefik ``ForwardAuth``: the original request
                        is described by ``X-Original-URI``/``X-Forwarded-Uri``,
                        ``X-Original-Method``/``X-Forwarded-Method`` and ``X-Forwarded-Host``.
    ``/envoy/...``      Envoy ``ext_authz`` (HTTP service with ``path_prefix: /envoy``): the
                        original method, path and ``Host`` arrive as they were.
    ``/healthz``        200 when every issuer has usable keys, else 503.
    ``/metrics``        Prometheus text format (with ``prometheus_client``).

Answers: 200 with ``X-Auth-Subject``, ``X-Auth-Scopes`` and the configured claim headers, or the
RFC 6750 401/403 with ``WWW-Authenticate``, 400 for a malformed request, 503 with ``Retry-After``
when no keys can be had.

Sender-constrained tokens: the gateway forwards the ``DPoP`` header with the original request's
headers, and the scheme in ``X-Forwarded-Proto`` (``https`` when absent), so the proof is checked
against the URL the client addressed; a client certificate comes in the ``[sender]``
``client_cert_header`` from a trusted gateway (nginx ``$ssl_client_escaped_cert``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._audit import AuditTrail, fan_out, token_hash
from .._bearer import Credentials, ErrorResponse, error_response, extract_credentials
from .._claims_result import Claims
from .._events import EventHandler, log_event
from .._lifecycle import Lifecycle
from .._metrics import PrometheusMetrics, issuer_status
from .._redis_store import RedisStore
from .._replay_ledger import RedisReplayLedger
from .._sender import PresentedRequest, SenderConstraints
from .._sender_settings import build_sender_settings
from .._settings import build_validator
from .._validator import Validator
from ..errors import InvalidRequest, JWKGuardError, TokenError
from ._config import ServerConfig
from ._routes import AmbiguousPath, Route, normalise_host, normalise_path

__all__ = ["ForwardAuthApp", "create_app"]

logger = logging.getLogger("jwkguard.forward_auth")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%") + " "
_MAX_HEADER_VALUE = 4096
_NO_STORE = {"Cache-Control": "no-store"}
_AUTHENTICATE = Route()
_WARM_UP_TIMEOUT = 10.0
_HEALTH_RETRY_INTERVAL = 5.0
_HEALTH_RETRY_TIMEOUT = 2.0


def header_value(value: Any) -> str | None:
    """A claim as a header value, or None when it has no safe single-line form.

    Strings with anything outside printable ASCII are percent-encoded (UTF-8); lists of
    strings or numbers are joined with commas; objects are left out.
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, str):
        text = value
    elif isinstance(value, list) and all(
        isinstance(item, str | int | float) and not isinstance(item, bool) for item in value
    ):
        text = ",".join(str(item) for item in value)
    else:
        return None
    if not _PRINTABLE.fullmatch(text):
        text = quote(text, safe=_HEADER_SAFE)
    text = text.strip()
    if not text or len(text) > _MAX_HEADER_VALUE:
        return None
    return text


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


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
        validator: A ready validator (tests); default: built from ``config.validator``.
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
        self.store: RedisStore | None = None
        handler: EventHandler = log_event
        if validator is None:
            handlers: list[EventHandler] = [log_event]
            if self.audit is not None:
                handlers.append(self.audit)
            if metrics is not None:
                handlers.append(metrics.on_event)
            if on_event is not None:
                handlers.append(on_event)
            handler = fan_out(*handlers)
            lifecycle = None
            if config.lifecycle is not None:
                self.store = RedisStore(
                    config.lifecycle["redis_url"],
                    prefix=config.lifecycle["prefix"],
                    on_event=handler,
                )
                lifecycle = Lifecycle(self.store, on_unavailable=config.lifecycle["on_unavailable"])
            validator = build_validator(config.validator, on_event=handler, lifecycle=lifecycle)
            if lifecycle is not None:
                lifecycle.attach(validator)
        self.sender = build_sender_settings(self._sender_options(config, handler))
        if metrics is not None:
            metrics.instrument(validator)
            self._responses = _responses_counter(metrics)
        else:
            self._responses = None
        self.validator = validator
        self._realm = config.realm
        self._prefix = config.envoy_prefix
        self._last_health_retry = 0.0

    def _sender_options(self, config: ServerConfig, handler: EventHandler) -> dict[str, Any]:
        """``[sender]``, with DPoP proofs remembered in the fleet's Redis when there is one."""
        options = dict(config.sender)
        dpop = options.get("dpop")
        if self.store is not None and config.lifecycle is not None and dpop:
            dpop = {} if dpop is True else dict(dpop)
            dpop.setdefault(
                "replay",
                RedisReplayLedger(
                    self.store,
                    on_unavailable=config.lifecycle["on_unavailable"],
                    on_event=handler,
                ),
            )
            options["dpop"] = dpop
        return options

    def constraints(self, route: Route) -> SenderConstraints:
        """The sender constraints of ``route``: the server's, plus what the route demands."""
        if not (route.dpop or route.certificate):
            return self.sender.constraints
        return self.sender.constraints.requiring(dpop=route.dpop, certificate=route.certificate)

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
        if path == "/auth":
            response = await self.auth(request)
        elif path == self._prefix or path.startswith(self._prefix + "/"):
            response = await self.envoy(request)
        else:
            if path == "/healthz":
                response = await self.healthz()
            elif path == "/metrics":
                response = self.metrics_page()
            else:
                response = JSONResponse({"error": "not_found"}, status_code=404)
            await response(scope, receive, send)
            return
        if self._responses is not None:
            self._responses.labels(str(response.status_code)).inc()
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
                if self.store is not None:
                    await self.store.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        """Load the lifecycle replica and every issuer's keys (bounded; failures logged)."""
        if self.store is not None:
            await self.store.astart()
            if not self.store.available:
                logger.warning("the lifecycle store is unreachable; it keeps retrying")
        try:
            await asyncio.wait_for(self.validator.awarm_up(), _WARM_UP_TIMEOUT)
        except (JWKGuardError, TimeoutError, OSError) as exc:
            logger.warning("key warm-up failed; /healthz stays unready until keys load: %s", exc)
        for route in self.config.routes.routes:
            logger.info("route %s", route.describe())

    # -- the decision ---------------------------------------------------------------------

    async def auth(self, request: Request) -> Response:
        """The nginx / Traefik endpoint: the original request is described by headers."""
        headers = request.headers
        uri = headers.get("x-original-uri") or headers.get("x-forwarded-uri")
        if not uri:
            return _error(
                error_response(
                    InvalidRequest(
                        "The gateway sent no X-Original-URI or X-Forwarded-Uri header",
                        reason="missing_original_uri",
                    ),
                    realm=self._realm,
                )
            )
        method = (
            headers.get("x-original-method") or headers.get("x-forwarded-method") or request.method
        )
        host = headers.get("x-forwarded-host") or headers.get("host") or ""
        return await self.decide(request, method, host, uri)

    async def envoy(self, request: Request) -> Response:
        """The Envoy endpoint: the original path follows the prefix, method and Host as sent."""
        scope = request.scope
        raw = scope.get("raw_path") or scope["path"].encode("utf-8")
        original = raw.decode("latin-1")[len(self._prefix) :] or "/"
        query = scope.get("query_string", b"")
        if query:
            original += "?" + query.decode("latin-1")
        return await self.decide(request, request.method, request.headers.get("host", ""), original)

    async def decide(self, request: Request, method: str, host: str, uri: str) -> Response:
        """Allow or refuse the original request ``method host uri``."""
        try:
            path, query = normalise_path(uri)
        except AmbiguousPath as exc:
            return _error(
                error_response(InvalidRequest(str(exc), reason="ambiguous_path"), realm=self._realm)
            )
        route = self.config.routes.match(normalise_host(host), path, method.upper())
        if route is None:
            if self.config.unmatched == "deny":
                return JSONResponse(
                    {"error": "access_denied", "reason": "no_route"},
                    status_code=403,
                    headers=_NO_STORE,
                )
            route = _AUTHENTICATE
        query_token = None
        if query and "access_token" in query:
            tokens = parse_qs(query).get("access_token")
            if tokens:
                query_token = tokens[0]
        constraints = self.constraints(route)
        authorization = request.headers.getlist("authorization")
        try:
            found = extract_credentials(
                authorization,
                query_token=query_token,
                allow_query=self.config.allow_query_token,
            )
        except InvalidRequest as exc:
            return _error(constraints.refusal(exc, realm=self._realm))
        if found is None:
            if route.anonymous:
                return Response(status_code=200, headers=_NO_STORE)
            return _error(constraints.refusal(None, realm=self._realm))
        token = found.token
        try:
            claims = await self.validator.avalidate(token, scopes=route.scopes)
            if "cnf" in claims or found.scheme != "Bearer" or not constraints.inactive:
                presented = self.presented(request, found, method, host, uri, constraints)
                await constraints.acheck(claims, presented)
            if route.introspect and self.sender.introspector is not None:
                await self.sender.introspector.aintrospect(token)
        except TokenError as exc:
            logger.debug(
                "refused %s %s%s: %s (token %s)", method, host, path, exc.reason, token_hash(token)
            )
            return _error(
                constraints.refusal(
                    exc,
                    realm=self._realm,
                    required_scopes=route.scopes,
                    authorization=authorization,
                )
            )
        return Response(status_code=200, headers=self.identity_headers(claims))

    @staticmethod
    def presented(
        request: Request,
        found: Credentials,
        method: str,
        host: str,
        uri: str,
        constraints: SenderConstraints,
    ) -> PresentedRequest:
        """The original request as the client sent it, for DPoP and certificate binding."""
        headers = request.headers
        scheme = (headers.get("x-forwarded-proto") or "https").split(",")[0].strip().lower()
        forwarded = (
            headers.getlist(constraints.client_cert_header)
            if constraints.client_cert_header is not None
            else []
        )
        return PresentedRequest(
            scheme=found.scheme,
            token=found.token,
            method=method.upper(),
            url=f"{scheme}://{host}{uri}",
            dpop_proofs=tuple(headers.getlist("dpop")),
            client_certificate=constraints.client_certificate(
                None, forwarded, request.client.host if request.client else None
            ),
        )

    def identity_headers(self, claims: Claims) -> dict[str, str]:
        """``X-Auth-Subject``, ``X-Auth-Scopes`` and the configured claim headers."""
        headers = dict(_NO_STORE)
        subject = header_value(claims.subject) if claims.subject is not None else None
        if subject is not None:
            headers["X-Auth-Subject"] = subject
        headers["X-Auth-Scopes"] = " ".join(sorted(claims.scopes))
        for name, claim in self.config.claim_headers.items():
            value = header_value(_claim(claims, claim))
            if value is not None:
                headers[name] = value
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
