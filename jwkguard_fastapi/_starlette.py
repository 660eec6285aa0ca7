"""Starlette without FastAPI: an ``AuthenticationBackend`` and a pure ASGI middleware."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from jwkguard import Claims, ErrorResponse, SenderConstraints, TokenError, Validator

from ._authenticate import Authenticator, QueryPolicy, close_reason
from ._responses import to_response

__all__ = ["ClaimsUser", "JWKGuardBackend", "JWKGuardMiddleware", "TokenAuthenticationError"]


class ClaimsUser(BaseUser):
    """``request.user`` for a verified token: the subject, with the claims at hand."""

    def __init__(self, claims: Claims) -> None:
        self.claims = claims

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.claims.subject or ""

    @property
    def identity(self) -> str:
        return self.claims.subject or ""


class TokenAuthenticationError(AuthenticationError):
    """A refused token, carrying its RFC 6750 answer for :meth:`JWKGuardBackend.on_error`."""

    def __init__(self, response: ErrorResponse) -> None:
        super().__init__(response.body["error_description"])
        self.response = response


class JWKGuardBackend(AuthenticationBackend):
    """Authentication backend for Starlette's ``AuthenticationMiddleware``.

    A request without a token is anonymous; a valid token gives ``request.user`` (a
    :class:`ClaimsUser`) and ``request.auth.scopes`` (the granted scopes, so ``@requires``
    works); a bad token is refused with its RFC 6750 answer when the middleware is given
    ``on_error=JWKGuardBackend.on_error``.

    Example:
        Middleware(AuthenticationMiddleware, backend=JWKGuardBackend(validator),
                   on_error=JWKGuardBackend.on_error)

    Args:
        validator: The validator.
        realm: The ``realm`` of the ``WWW-Authenticate`` challenge.
        allow_query: Where ``?access_token=`` is accepted (``"never"``, ``"websocket"``,
            ``"always"``).
        websocket_subprotocol: Accept a WebSocket token offered as ``[marker, token]``.
        sender_constraints: DPoP and certificate binding; bound tokens are refused by default.
    """

    def __init__(
        self,
        validator: Validator,
        *,
        realm: str = "api",
        allow_query: QueryPolicy = "never",
        websocket_subprotocol: str | None = None,
        sender_constraints: SenderConstraints | None = None,
    ) -> None:
        self.validator = validator
        self.authenticator = Authenticator(
            realm=realm,
            allow_query=allow_query,
            websocket_subprotocol=websocket_subprotocol,
            sender_constraints=sender_constraints,
        )

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """The credentials and user of the connection, None when anonymous."""
        try:
            claims = await self.authenticator.authenticate(conn.scope, self.validator)
        except TokenError as exc:
            raise TokenAuthenticationError(self.authenticator.refusal(exc, conn.scope)) from None
        if claims is None:
            return None
        conn.scope.setdefault("state", {})["claims"] = claims
        return AuthCredentials(sorted(claims.scopes)), ClaimsUser(claims)

    @staticmethod
    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        """The RFC 6750 answer for a refused token (pass as the middleware's ``on_error``)."""
        if isinstance(exc, TokenAuthenticationError):
            return to_response(exc.response)
        return PlainTextResponse(str(exc), status_code=400)


class JWKGuardMiddleware:
    """Pure ASGI middleware that protects a whole application, answering refusals itself.

    Every HTTP request and WebSocket handshake must carry a valid token, except for the
    exempt paths and methods. The verified claims go to ``request.state.claims``. Refusals
    follow RFC 6750; a refused WebSocket handshake is closed with 1008 (1013 when no signing
    keys can be had).

    Args:
        app: The ASGI application to protect.
        validator: The validator.
        exempt_paths: Paths served without a token (exact match, e.g. ``"/health"``).
        exempt_prefixes: Path prefixes served without a token (e.g. ``"/public/"``).
        exempt_methods: Methods served without a token (e.g. ``"OPTIONS"`` for CORS).
        scopes: Scopes every request needs.
        realm: The ``realm`` of the ``WWW-Authenticate`` challenge.
        allow_query: Where ``?access_token=`` is accepted.
        websocket_subprotocol: Accept a WebSocket token offered as ``[marker, token]``.
        sender_constraints: DPoP and certificate binding; bound tokens are refused by default.
    """

    def __init__(
        self,
        app: ASGIApp,
        validator: Validator,
        *,
        exempt_paths: Iterable[str] = (),
        exempt_prefixes: Iterable[str] = (),
        exempt_methods: Iterable[str] = (),
        scopes: Collection[str] = (),
        realm: str = "api",
        allow_query: QueryPolicy = "never",
        websocket_subprotocol: str | None = None,
        sender_constraints: SenderConstraints | None = None,
    ) -> None:
        self.app = app
        self.validator = validator
        self.exempt_paths = frozenset(exempt_paths)
        self.exempt_prefixes = tuple(exempt_prefixes)
        self.exempt_methods = frozenset(method.upper() for method in exempt_methods)
        self.scopes = frozenset(scopes)
        self.authenticator = Authenticator(
            realm=realm,
            allow_query=allow_query,
            websocket_subprotocol=websocket_subprotocol,
            sender_constraints=sender_constraints,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._exempt(scope):
            await self.app(scope, receive, send)
            return
        error: TokenError | None = None
        try:
            claims = await self.authenticator.authenticate(scope, self.validator, self.scopes)
        except TokenError as exc:
            claims, error = None, exc
        if claims is not None:
            scope.setdefault("state", {})["claims"] = claims
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            code, reason = close_reason(error)
            await send({"type": "websocket.close", "code": code, "reason": reason})
            return
        answer = (
            self.authenticator.missing()
            if error is None
            else self.authenticator.refusal(error, scope)
        )
        await to_response(answer)(scope, receive, send)

    def _exempt(self, scope: Scope) -> bool:
        path: str = scope["path"]
        return (
            path in self.exempt_paths
            or path.startswith(self.exempt_prefixes)
            or (scope["type"] == "http" and scope["method"] in self.exempt_methods)
        )
