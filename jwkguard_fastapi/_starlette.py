"""Starlette without FastAPI: an ``AuthenticationBackend`` and a pure ASGI middleware."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any, Unpack

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp

from jwkguard import Claims, ConfigurationError, Validator
from jwkguard.asgi import GuardOptions
from jwkguard.asgi import JWKGuardMiddleware as ASGIMiddleware
from jwkguard.pipeline import Decision, ErrorResponse
from jwkguard.sender import SenderConstraints

from ._authenticate import Authenticator, AuthenticatorOptions
from ._responses import to_response

__all__ = ["JWKGuardBackend", "JWKGuardMiddleware", "TokenAuthenticationError", "TokenUser"]


class TokenUser(BaseUser):
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
    :class:`TokenUser`) and ``request.auth.scopes`` (the granted scopes, so ``@requires``
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
        resource: RFC 9728 metadata (or the resource URL) for ``resource_metadata`` in
            challenges.
    """

    def __init__(self, validator: Validator, **options: Unpack[AuthenticatorOptions]) -> None:
        self.validator = validator
        self.authenticator = Authenticator(**options)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """The credentials and user of the connection, None when anonymous."""
        authenticator = self.authenticator
        decision = await authenticator.decide(
            conn.scope, self.validator, authenticator.policy(optional=True)
        )
        if decision.response is not None:
            raise TokenAuthenticationError(decision.response)
        claims = decision.claims
        if claims is None:
            return None
        conn.scope.setdefault("state", {})["claims"] = claims
        return AuthCredentials(sorted(claims.scopes)), TokenUser(claims)

    @staticmethod
    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        """The RFC 6750 answer for a refused token (pass as the middleware's ``on_error``)."""
        if isinstance(exc, TokenAuthenticationError):
            return to_response(exc.response)
        return PlainTextResponse(str(exc), status_code=400)


class JWKGuardMiddleware(ASGIMiddleware):
    """Pure ASGI middleware that protects a whole application, answering refusals itself.

    :class:`jwkguard.asgi.JWKGuardMiddleware` with Starlette's conventions: the verified
    claims also go to ``request.state.claims``. Every HTTP request and WebSocket handshake
    must carry a valid token, except the exempt paths and methods. Refusals follow RFC 6750;
    a refused WebSocket handshake gets the HTTP answer where the server supports it, else it
    is closed with 1008 (1013 when no signing keys can be had).

    Args:
        app: The ASGI application to protect.
        validator: The validator.
        exempt_paths: Path prefixes served without a token, on whole segments (``"/health"``
            covers ``/health/live``, not ``/healthz``); only canonical spellings are exempt.
        exempt_prefixes: The same as ``exempt_paths`` (kept for existing configurations).
        exempt_methods: Methods served without a token; default ``OPTIONS`` (CORS preflight).
        optional: Let requests without a token through (``request.state.claims`` is None).
        realm: The ``realm`` of the ``WWW-Authenticate`` challenge.
        allow_query: Where ``?access_token=`` is accepted.
        websocket_subprotocol: Accept a WebSocket token offered as ``[marker, token]``.
        sender_constraints: DPoP and certificate binding; bound tokens are refused by default.
        introspector: Introspection for opaque tokens (and every token with ``introspect``).
        resource: RFC 9728 metadata (or the resource URL): ``resource_metadata`` in every
            challenge, and the document served at its well-known path.
        route: What every request's token must satisfy (``scopes``, ``introspect``, step-up,
            roles, issuers, audiences...), as :class:`jwkguard.asgi.GuardedApp` takes them;
            see :class:`jwkguard.pipeline.RouteOptions`.
    """

    def __init__(
        self,
        app: ASGIApp,
        validator: Validator,
        *,
        exempt_prefixes: Iterable[str] = (),
        sender_constraints: SenderConstraints | None = None,
        **options: Unpack[GuardOptions],
    ) -> None:
        if isinstance(exempt_prefixes, str):
            raise ConfigurationError("exempt_prefixes must be a list of paths")
        if exempt_prefixes:
            options["exempt_paths"] = [*options.get("exempt_paths", ()), *exempt_prefixes]
        super().__init__(app, validator, sender=sender_constraints, **options)
        self.validator = validator

    def attach(self, scope: MutableMapping[str, Any], decision: Decision) -> None:
        """``request.state.claims`` as well as ``scope["jwkguard.claims"]``."""
        super().attach(scope, decision)
        scope.setdefault("state", {})["claims"] = decision.claims
