"""Starlette without FastAPI: an ``AuthenticationBackend`` and a pure ASGI middleware."""

from __future__ import annotations

from collections.abc import Collection, Iterable, MutableMapping
from typing import Any

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp

from jwkguard import (
    Claims,
    ConfigurationError,
    Decision,
    ErrorResponse,
    Introspector,
    QueryPolicy,
    ResourceMetadata,
    SenderConstraints,
    Validator,
)
from jwkguard.asgi import DEFAULT_EXEMPT_METHODS
from jwkguard.asgi import JWKGuardMiddleware as ASGIMiddleware

from ._authenticate import Authenticator
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
        resource: RFC 9728 metadata (or the resource URL) for ``resource_metadata`` in
            challenges.
    """

    def __init__(
        self,
        validator: Validator,
        *,
        realm: str = "api",
        allow_query: QueryPolicy = "never",
        websocket_subprotocol: str | None = None,
        sender_constraints: SenderConstraints | None = None,
        resource: ResourceMetadata | str | None = None,
    ) -> None:
        self.validator = validator
        self.authenticator = Authenticator(
            realm=realm,
            allow_query=allow_query,
            websocket_subprotocol=websocket_subprotocol,
            sender_constraints=sender_constraints,
            resource=resource,
        )

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
        return AuthCredentials(sorted(claims.scopes)), ClaimsUser(claims)

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
        scopes: Scopes every request needs.
        realm: The ``realm`` of the ``WWW-Authenticate`` challenge.
        allow_query: Where ``?access_token=`` is accepted.
        websocket_subprotocol: Accept a WebSocket token offered as ``[marker, token]``.
        sender_constraints: DPoP and certificate binding; bound tokens are refused by default.
        introspector: Introspection for opaque tokens (and every token with ``introspect``).
        introspect: Ask the introspector about every token (RFC 7662 hybrid mode).
        resource: RFC 9728 metadata (or the resource URL): ``resource_metadata`` in every
            challenge, and the document served at its well-known path.
        acr_values: Step-up (RFC 9470): every token's ``acr`` must be one of these.
        max_age: Step-up (RFC 9470): the user authenticated at most this many seconds ago.
        any_scopes: Every token must grant at least one of these scopes.
        roles: Every token must hold all of these roles (``Claims.roles``).
        any_roles: Every token must hold at least one of these roles.
        issuers: Accept only tokens from these of the validator's issuers.
        audiences: Accept only tokens whose ``aud`` names one of these.
    """

    def __init__(
        self,
        app: ASGIApp,
        validator: Validator,
        *,
        exempt_paths: Iterable[str] = (),
        exempt_prefixes: Iterable[str] = (),
        exempt_methods: Iterable[str] = DEFAULT_EXEMPT_METHODS,
        optional: bool = False,
        scopes: Collection[str] = (),
        realm: str = "api",
        allow_query: QueryPolicy = "never",
        websocket_subprotocol: str | None = None,
        sender_constraints: SenderConstraints | None = None,
        introspector: Introspector | None = None,
        introspect: bool = False,
        resource: ResourceMetadata | str | None = None,
        acr_values: Collection[str] = (),
        max_age: int | None = None,
        any_scopes: Collection[str] = (),
        roles: Collection[str] = (),
        any_roles: Collection[str] = (),
        issuers: Collection[str] = (),
        audiences: Collection[str] = (),
    ) -> None:
        if isinstance(exempt_prefixes, str):
            raise ConfigurationError("exempt_prefixes must be a list of paths")
        super().__init__(
            app,
            validator,
            exempt_paths=[*exempt_paths, *exempt_prefixes],
            exempt_methods=exempt_methods,
            optional=optional,
            scopes=scopes,
            realm=realm,
            allow_query=allow_query,
            websocket_subprotocol=websocket_subprotocol,
            sender=sender_constraints,
            introspector=introspector,
            introspect=introspect,
            resource=resource,
            acr_values=acr_values,
            max_age=max_age,
            any_scopes=any_scopes,
            roles=roles,
            any_roles=any_roles,
            issuers=issuers,
            audiences=audiences,
        )
        self.validator = validator

    def attach(self, scope: MutableMapping[str, Any], decision: Decision) -> None:
        """``request.state.claims`` as well as ``scope["jwkguard.claims"]``."""
        super().attach(scope, decision)
        scope.setdefault("state", {})["claims"] = decision.claims
