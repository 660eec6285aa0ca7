"""jwkguard for MCP servers: a ``TokenVerifier`` for the official ``mcp`` SDK, and its guard.

The Model Context Protocol's authorization spec makes every MCP server a protected resource:
it MUST publish RFC 9728 metadata and MUST refuse tokens that were not issued for it (RFC 8707
audience). :class:`JWKGuardTokenVerifier` satisfies the SDK's ``TokenVerifier`` protocol
(``async verify_token(token) -> AccessToken | None``) with jwkguard's validation (key cache
with cooldown and last-known-good keys, strict key selection), and refuses any token whose
``aud`` does not name the resource, whatever else the validator accepts.

The SDK's bearer backend turns every failure into the same bare 401; wrap the app with
:meth:`JWKGuardTokenVerifier.protect` to keep jwkguard's answers: 401 ``invalid_token``
with the reason (``expired``, ``audience_mismatch``...), 403 ``insufficient_scope`` with
``scope``, 503 with ``Retry-After`` when no keys can be had, and ``resource_metadata`` in
every challenge::

    from mcp.server.mcpserver import MCPServer
    from jwkguard_fastapi.mcp import JWKGuardTokenVerifier

    verifier = JWKGuardTokenVerifier(validator, resource="https://api.example.com/mcp")
    server = MCPServer("tools", token_verifier=verifier, auth=verifier.auth_settings())
    app = verifier.protect(server.streamable_http_app())
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, MutableMapping
from contextvars import ContextVar
from typing import Any, TypedDict, TypeVar
from urllib.parse import urlsplit

from jwkguard._lazy import missing_extra

try:
    from mcp.server.auth.provider import AccessToken
    from mcp.server.auth.settings import AuthSettings
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise missing_extra("jwkguard_fastapi.mcp", "the MCP SDK", "mcp") from exc

from jwkguard import Claims, ConfigurationError, RequestPipeline, RoutePolicy, TokenError, Validator
from jwkguard.asgi import close_handshake, send_error, send_metadata, unknown_scope
from jwkguard.pipeline import Decision, ResourceMetadata, acr_list, view_from_asgi
from jwkguard.sender import SenderConstraints
from jwkguard.settings import list_of

__all__ = ["JWKGuardMCPGuard", "JWKGuardTokenVerifier", "access_token"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
TokenT = TypeVar("TokenT", bound=AccessToken)

# The token the guard accepted for the request in flight, so ``verify_token`` (called by the
# SDK's bearer backend inside the guarded app) does not validate it a second time.
_ACCEPTED: ContextVar[AccessToken | None] = ContextVar("jwkguard_mcp_accepted", default=None)


def access_token(
    token: str,
    claims: Claims,
    resource: str,
    kind: type[TokenT] = AccessToken,  # type: ignore[assignment]
) -> TokenT:
    """The SDK's ``AccessToken`` for verified ``claims`` (``resource`` is the audience named).

    ``client_id`` is RFC 9068's ``client_id``, else ``azp``, else the subject; ``claims``
    holds every claim, so tools can read ``iss``, ``acr`` or custom claims.
    """
    client = claims.get("client_id") or claims.get("azp") or claims.subject or ""
    expires = claims.get("exp")
    return kind(
        token=token,
        client_id=str(client),
        scopes=sorted(claims.scopes),
        expires_at=int(expires) if isinstance(expires, int | float) else None,
        resource=resource,
        subject=claims.subject,
        claims=dict(claims),
    )


class _VerifierOptions(TypedDict, total=False):
    """The options of :class:`JWKGuardTokenVerifier` after the validator and the resource."""

    required_scopes: Collection[str]
    acr_values: Collection[str]
    max_age: int | None
    realm: str
    sender: SenderConstraints | None


class JWKGuardTokenVerifier:
    """The MCP SDK's ``TokenVerifier``, backed by a jwkguard validator.

    Args:
        validator: The validator (issuers, algorithms, key cache).
        resource: The MCP server's resource identifier (RFC 8707), e.g.
            ``https://api.example.com/mcp``, or its full
            :class:`jwkguard.pipeline.ResourceMetadata`.
            A token whose ``aud`` does not name it is refused, whatever the validator's own
            audiences accept.
        required_scopes: Scopes every request must grant (403 ``insufficient_scope``).
        acr_values: Step-up (RFC 9470): the token's ``acr`` must be one of these.
        max_age: Step-up (RFC 9470): the user authenticated at most this many seconds ago.
        realm: The ``realm`` of the guard's challenges.
        sender: DPoP and certificate binding for the guard; bound tokens are refused by
            default (the SDK's bearer backend only speaks ``Bearer``).
    """

    def __init__(
        self,
        validator: Validator,
        *,
        resource: str | ResourceMetadata,
        required_scopes: Collection[str] = (),
        acr_values: Collection[str] = (),
        max_age: int | None = None,
        realm: str = "mcp",
        sender: SenderConstraints | None = None,
    ) -> None:
        if not isinstance(validator, Validator):
            raise ConfigurationError("JWKGuardTokenVerifier needs a jwkguard.Validator")
        self.validator = validator
        self.pipeline = RequestPipeline(
            validator, realm=realm, sender=sender, resource=resource, resource_audience=True
        )
        metadata = self.pipeline.resource
        if metadata is None:  # pragma: no cover - resource is required
            raise ConfigurationError("resource is required")
        self.metadata: ResourceMetadata = metadata
        self.resource = metadata.resource
        self.policy = RoutePolicy(
            scopes=frozenset(required_scopes),
            acr_values=acr_list(acr_values),
            max_age=max_age,
        )

    # -- the SDK's protocol ---------------------------------------------------------------

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's ``AccessToken``, or None when jwkguard refuses it (any reason)."""
        return await self.averify(token, AccessToken)

    async def averify(self, token: str, kind: type[TokenT]) -> TokenT | None:
        """:meth:`verify_token` building ``kind`` (a subclass of the SDK's ``AccessToken``)."""
        accepted = _ACCEPTED.get()
        if accepted is not None and accepted.token == token and isinstance(accepted, kind):
            return accepted
        try:
            claims = await self.validator.avalidate(token)
            # The resource's audience (RFC 8707), then scopes and step-up.
            self.pipeline.check_claims(claims, self.policy)
        except TokenError:
            return None
        return access_token(token, claims, self.resource, kind)

    # -- configuration for the SDK --------------------------------------------------------

    def auth_settings(self, **options: Any) -> AuthSettings:
        """``AuthSettings`` for ``MCPServer(auth=...)``: this resource, its first issuer.

        ``validate_token_resource`` is on (``verify_token`` reports the resource it checked),
        and ``required_scopes`` are the verifier's. ``options`` override any field.
        """
        settings: dict[str, Any] = {
            "issuer_url": self.validator.issuers[0].issuer,
            "resource_server_url": self.resource,
            "required_scopes": sorted(self.policy.scopes) or None,
            "validate_token_resource": True,
        }
        settings.update(options)
        return AuthSettings(**settings)

    def protect(self, app: ASGIApp, *, paths: Collection[str] | None = None) -> JWKGuardMCPGuard:
        """``app`` behind :class:`JWKGuardMCPGuard`: jwkguard's refusals, served metadata."""
        return JWKGuardMCPGuard(app, verifier=self, paths=paths)


class JWKGuardMCPGuard:
    """ASGI middleware in front of an MCP app: jwkguard judges the MCP endpoint's requests.

    Requests to the MCP endpoint (default: the resource identifier's path, e.g. ``/mcp``)
    go through the request pipeline and the resource's audience check; a refusal is
    answered with jwkguard's RFC 6750 / RFC 9470 / RFC 9728 answer, so a client can tell an
    expired token (401 ``expired``) from a wrong audience (401 ``audience_mismatch``), a
    missing scope (403 ``insufficient_scope`` with ``scope``) and an outage (503 with
    ``Retry-After``). Accepted requests continue to the app, whose own bearer backend gets
    the same ``AccessToken`` without validating again. ``GET`` at the resource's well-known
    path answers with the metadata document. ``OPTIONS`` (CORS preflight) passes. A
    WebSocket handshake to a guarded path is closed (1008); a scope type the guard cannot
    check raises.

    Args:
        app: The MCP server's ASGI app (``streamable_http_app()``).
        verifier: The verifier whose validator, resource and policy apply.
        paths: The paths guarded; default: the resource identifier's path.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: JWKGuardTokenVerifier,
        paths: Collection[str] | None = None,
        kind: type[AccessToken] = AccessToken,
    ) -> None:
        if paths is None:
            paths = (urlsplit(verifier.resource).path.rstrip("/") or "/",)
        paths = list_of(
            paths,
            "paths",
            each=lambda p: isinstance(p, str) and p[:1] == "/",
            described="paths such as ['/mcp']",
        )
        self.app = app
        self.verifier = verifier
        self.paths = frozenset(paths)
        self.kind = kind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            await self.other_scope(kind, scope, receive, send)
            return
        path = scope["path"]
        method = scope.get("method", "GET")
        verifier = self.verifier
        metadata = verifier.metadata
        if metadata.serves(path) and method in ("GET", "HEAD"):
            await send_metadata(send, metadata, head=method == "HEAD")
            return
        if method == "OPTIONS" or (path.rstrip("/") or "/") not in self.paths:
            await self.app(scope, receive, send)
            return
        decision = await self.decide(scope)
        if decision.response is not None:
            await send_error(send, decision.response, head=method == "HEAD")
            return
        claims = decision.claims
        credentials = decision.credentials
        if claims is None or credentials is None:  # pragma: no cover - the policy is required
            await send_error(send, verifier.pipeline.missing(verifier.policy))
            return
        accepted = access_token(credentials.token, claims, verifier.resource, self.kind)
        reset = _ACCEPTED.set(accepted)
        try:
            await self.app(scope, receive, send)
        finally:
            _ACCEPTED.reset(reset)

    async def other_scope(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        """``lifespan`` and WebSockets elsewhere pass; a WebSocket handshake to a guarded path
        is closed with 1008 (MCP speaks HTTP there, and no token is checked on a handshake);
        any other scope type, which the guard cannot check, raises."""
        if kind == "websocket" and (scope["path"].rstrip("/") or "/") in self.paths:
            await close_handshake(receive, send, 1008, "HTTP only")
            return
        if kind not in ("lifespan", "websocket"):
            raise unknown_scope(kind)
        await self.app(scope, receive, send)

    async def decide(self, scope: Scope) -> Decision:
        """The pipeline's decision on the request (the resource's audience included)."""
        verifier = self.verifier
        return await verifier.pipeline.arun(view_from_asgi(scope), verifier.policy)
