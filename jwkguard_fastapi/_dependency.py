"""``JWTBearer``: the FastAPI security dependency (HTTP routes and WebSockets alike)."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Annotated, Any, TypedDict, TypeVar, Unpack

from fastapi import Security, WebSocketException
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowAuthorizationCode, OAuthFlows
from fastapi.openapi.models import OpenIdConnect as OpenIdConnectModel
from fastapi.openapi.models import SecurityBase as SecurityBaseModel
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection

from jwkguard import Claims, ConfigurationError, RoutePolicy, TokenError, Validator
from jwkguard.asgi import close_reason
from jwkguard.pipeline import ErrorResponse, PipelineOptions, ResourceMetadata, acr_list
from jwkguard.sender import SenderConstraints, SenderOptions

from ._authenticate import Authenticator
from ._responses import VALIDATOR_STATE, BearerError

__all__ = ["CurrentClaims", "JWTBearer", "OptionalClaims", "swagger_ui_oauth"]

_Model = TypeVar("_Model")


class _Narrowing(TypedDict, total=False):
    """A dependency's issuer, audience, any-of scope and role demands (see ``JWTBearer``)."""

    any_scopes: Collection[str]
    roles: Collection[str]
    any_roles: Collection[str]
    issuers: Collection[str]
    audiences: Collection[str]


def _narrowing(
    base: RoutePolicy,
    any_scopes: Collection[str] = (),
    roles: Collection[str] = (),
    any_roles: Collection[str] = (),
    issuers: Collection[str] = (),
    audiences: Collection[str] = (),
) -> RoutePolicy | None:
    """``base`` with these demands added (all-of sets joined, any-of sets replaced), or None
    when it demands none of them (the common case costs nothing per request)."""
    given = RoutePolicy.from_options(
        any_scopes=any_scopes,
        roles=roles,
        any_roles=any_roles,
        issuers=issuers,
        audiences=audiences,
    )
    policy = RoutePolicy(
        any_scopes=given.any_scopes or base.any_scopes,
        roles=base.roles | given.roles,
        any_roles=given.any_roles or base.any_roles,
        issuers=given.issuers or base.issuers,
        audiences=given.audiences or base.audiences,
    )
    return policy if policy.narrowed else None


class OpenAPIScheme(TypedDict, total=False):
    """How :class:`JWTBearer` describes its security scheme in OpenAPI (see its arguments)."""

    description: str | None
    openid_connect_url: str | None
    authorization_url: str | None
    token_url: str | None
    refresh_url: str | None
    scopes: Mapping[str, str] | None


class _BearerOptions(OpenAPIScheme, PipelineOptions, SenderOptions, total=False):
    """The keyword options :class:`JWTBearer` passes on: to its pipeline, to its sender
    constraints, or to OpenAPI."""


class JWTBearer(SecurityBase):
    """Validates the request's bearer token; use with ``Security`` or ``Depends``.

    The dependency returns the verified :class:`jwkguard.Claims` and stores them on
    ``request.state.claims``. Scopes declared with ``Security(auth, scopes=[...])`` along the
    whole dependency chain are required, and checked only after the token is fully verified.
    Refusals follow RFC 6750 section 3: 401 without a token or with a bad one, 400 for a
    malformed request, 403 ``insufficient_scope``, 503 when no signing keys can be had. On a
    WebSocket the handshake is closed instead: 1008, or 1013 when the keys are unavailable.

    Example:
        auth = JWTBearer(validator)

        @app.get("/orders")
        async def orders(claims: Claims = Security(auth, scopes=["orders:read"])): ...

    Args:
        validator: The validator; None reads the one given to ``install(app, validator)``.
        scheme_name: The security scheme's name in OpenAPI (default ``JWTBearer``, or
            ``OpenIDConnect`` or ``OAuth2`` for those schemes).
        description: The security scheme's description in OpenAPI.
        auto_error: False makes authentication optional: None is returned when the request
            carries no token (a bad token is still refused).
        realm: The ``realm`` of the ``WWW-Authenticate`` challenge.
        allow_query: Where ``?access_token=`` is accepted: ``"never"`` (default),
            ``"websocket"`` (handshakes only) or ``"always"``.
        websocket_subprotocol: Accept a WebSocket token offered as the subprotocols
            ``[marker, token]``; accept the socket with ``subprotocol=auth.subprotocol(ws)``.
        dpop: Accept DPoP-bound tokens (RFC 9449) with proofs checked by this verifier; share
            one verifier between dependencies so they share its replay ledger. Without it,
            tokens bound to a key are refused.
        require_dpop: Refuse tokens that are not DPoP-bound (challenge ``DPoP``).
        require_dpop_issuers: Refuse tokens from these issuers unless DPoP-bound.
        require_certificate: Refuse tokens that are not bound to the client certificate.
        client_cert_header: The header in which a TLS-terminating proxy forwards the client
            certificate (RFC 8705), e.g. ``X-SSL-Client-Cert``; otherwise the certificate
            comes from the ASGI TLS extension where the server provides it.
        trusted_proxies: Addresses or networks whose ``client_cert_header`` is believed.
        introspector: After every local check, also ask the authorization server whether
            the token is still active (RFC 7662 hybrid mode, for high-value routes).
        sender_constraints: A ready :class:`jwkguard.sender.SenderConstraints`, instead of the
            six options above.
        openid_connect_url: Describe the scheme in OpenAPI as OpenID Connect discovery.
        authorization_url: With ``token_url``, describe it as OAuth 2 authorization code.
        token_url: The token endpoint of the authorization code flow.
        refresh_url: The refresh endpoint of the authorization code flow, if any.
        scopes: Scope names and descriptions offered by the Authorize dialog.
        resource: The resource's RFC 9728 metadata, or its identifier URL (described from
            the validator): every challenge carries ``resource_metadata``; serve the document
            with :func:`jwkguard_fastapi.add_resource_metadata`.
        acr_values: Step-up (RFC 9470): the token's ``acr`` must be one of these; else 401
            ``insufficient_user_authentication`` with ``acr_values`` in the challenge. For one
            route, use :meth:`step_up`.
        max_age: Step-up (RFC 9470): the user authenticated (``auth_time``) at most this many
            seconds ago.
        any_scopes: The token must grant at least one of these scopes (the route's own
            ``Security(auth, scopes=[...])`` must all be granted); else 403.
        roles: The token must hold every one of these roles (``Claims.roles``); else 403
            ``insufficient_scope`` with reason ``insufficient_role``.
        any_roles: The token must hold at least one of these roles.
        issuers: Accept only tokens from these of the validator's issuers; else 401 with
            reason ``issuer_not_accepted``.
        audiences: Accept only tokens whose ``aud`` names one of these; else 401 with reason
            ``audience_not_accepted``. For one route, use :meth:`requiring`.
    """

    def __init__(
        self,
        validator: Validator | None = None,
        *,
        scheme_name: str | None = None,
        auto_error: bool = True,
        sender_constraints: SenderConstraints | None = None,
        acr_values: Collection[str] = (),
        max_age: int | None = None,
        any_scopes: Collection[str] = (),
        roles: Collection[str] = (),
        any_roles: Collection[str] = (),
        issuers: Collection[str] = (),
        audiences: Collection[str] = (),
        **options: Unpack[_BearerOptions],
    ) -> None:
        if validator is not None and not isinstance(validator, Validator):
            raise ConfigurationError("JWTBearer needs a jwkguard.Validator")
        self.validator = validator
        self.auto_error = auto_error
        pipeline_options: dict[str, Any] = {}
        sender_options: dict[str, Any] = {}
        scheme: dict[str, Any] = {}
        for name, value in options.items():
            if name in PipelineOptions.__annotations__:
                pipeline_options[name] = value
            elif name in SenderOptions.__annotations__:
                sender_options[name] = value
            else:
                scheme[name] = value
        self.model = _openapi_model(**scheme)
        # Each kind of scheme has its own default name, so that the default bearer behind the
        # aliases never overwrites a configured OpenID Connect or OAuth 2 scheme in OpenAPI.
        self.scheme_name = scheme_name or _DEFAULT_SCHEME_NAMES[type(self.model)]
        if sender_constraints is not None and any(sender_options.values()):
            raise ConfigurationError(
                "give sender_constraints or the DPoP / certificate options, not both"
            )
        if sender_constraints is None:
            sender_constraints = SenderConstraints(**sender_options)
        self.authenticator = Authenticator(
            sender_constraints=sender_constraints, **pipeline_options
        )
        self.acr_values = acr_list(acr_values)
        self.max_age = max_age
        self.narrow = _narrowing(RoutePolicy(), any_scopes, roles, any_roles, issuers, audiences)
        self.authenticator.policy(acr_values=self.acr_values, max_age=max_age)  # checked now
        if validator is not None and self.narrow is not None:
            self.authenticator.pipeline(validator).check_policy(self.narrow)

    def requiring(self, **narrowing: Unpack[_Narrowing]) -> JWTBearer:
        """This dependency for a route that demands more: roles, any-of scopes, or tokens of
        only some issuers or audiences, on top of this dependency's own demands.

        ``Security(auth.requiring(roles=["admin"], issuers=[CORPORATE]), scopes=[...])``.
        All-of sets add up; an any-of set replaces this dependency's. The copy shares this
        dependency's pipeline, so a token already validated for the request is not validated
        again.
        """
        stricter = copy.copy(self)
        stricter.narrow = _narrowing(self.narrow or RoutePolicy(), **narrowing)
        if self.validator is not None and stricter.narrow is not None:
            self.authenticator.pipeline(self.validator).check_policy(stricter.narrow)
        return stricter

    def step_up(self, *, acr_values: Collection[str] = (), max_age: int | None = None) -> JWTBearer:
        """This dependency for a route that demands more of the user's login (RFC 9470).

        ``Security(auth.step_up(acr_values=["urn:mfa"], max_age=300), scopes=[...])``: the
        token's ``acr`` must be one of ``acr_values`` and its ``auth_time`` at most
        ``max_age`` seconds old, else 401 ``insufficient_user_authentication`` with both in
        the challenge. The copy shares this dependency's pipeline, so a token already
        validated for the request is not validated again.
        """
        stricter = copy.copy(self)
        stricter.acr_values = acr_list(acr_values) if acr_values else self.acr_values
        stricter.max_age = self.max_age if max_age is None else max_age
        self.authenticator.policy(acr_values=stricter.acr_values, max_age=stricter.max_age)
        return stricter

    def metadata(self, connection: HTTPConnection) -> ResourceMetadata | None:
        """The RFC 9728 metadata of this dependency's resource (None without ``resource``)."""
        validator = self.validator if self.validator is not None else _app_validator(connection)
        return self.authenticator.metadata(validator)

    @classmethod
    def from_metadata(
        cls,
        validator: Validator | None,
        metadata: Mapping[str, Any],
        *,
        scopes: Mapping[str, str] | None = None,
        **options: Any,
    ) -> JWTBearer:
        """A dependency whose OpenAPI scheme is the issuer's authorization code flow.

        Args:
            validator: As for ``JWTBearer``.
            metadata: The issuer's discovery document (OpenID Connect or RFC 8414), read for
                ``authorization_endpoint`` and ``token_endpoint``; ``scopes_supported`` gives
                the default scopes.
            scopes: Scope names and descriptions; default: ``scopes_supported``.
            options: Any other ``JWTBearer`` keyword argument.
        """
        try:
            authorization_url = str(metadata["authorization_endpoint"])
            token_url = str(metadata["token_endpoint"])
        except KeyError as exc:
            raise ConfigurationError(f"the issuer metadata has no {exc.args[0]}") from None
        if scopes is None:
            supported = metadata.get("scopes_supported") or []
            scopes = {str(name): str(name) for name in supported}
        return cls(
            validator,
            authorization_url=authorization_url,
            token_url=token_url,
            scopes=scopes,
            **options,
        )

    async def __call__(
        self, request: HTTPConnection, security_scopes: SecurityScopes
    ) -> Claims | None:
        """Authenticate the connection; FastAPI calls this for every protected route."""
        validator = self.validator if self.validator is not None else _app_validator(request)
        policy = self.authenticator.policy(
            security_scopes.scopes,
            optional=not self.auto_error,
            acr_values=self.acr_values,
            max_age=self.max_age,
            narrow=self.narrow,
        )
        decision = await self.authenticator.decide(request.scope, validator, policy)
        if decision.response is not None:
            raise self._refuse(request, decision.error, decision.response)
        # request.state reads this dict; writing it directly spares a State object per request.
        request.scope.setdefault("state", {})["claims"] = decision.claims
        return decision.claims

    def typed(self, model: type[_Model]) -> Callable[..., Awaitable[_Model | None]]:
        """A dependency giving the verified claims as ``model`` (pydantic, dataclass, TypedDict).

        A claim that is missing or of the wrong type is refused with 401 ``invalid_token``
        (reason ``invalid_claim``), never a 422. Scopes work as with the plain dependency::

            @app.get("/orders")
            async def orders(claims: OrderClaims = Security(auth.typed(OrderClaims),
                                                            scopes=["orders:read"])): ...
        """
        from ._typed import typed_dependency

        return typed_dependency(self, model)

    def subprotocol(self, websocket: HTTPConnection) -> str | None:
        """The subprotocol to pass to ``websocket.accept`` (the marker, if the client used it)."""
        validator = self.validator if self.validator is not None else _app_validator(websocket)
        return self.authenticator.offered_subprotocol(websocket.scope, validator)

    @staticmethod
    def _refuse(
        request: HTTPConnection, exc: TokenError | None, response: ErrorResponse
    ) -> Exception:
        if request.scope["type"] == "websocket":
            code, reason = close_reason(exc)
            return WebSocketException(code=code, reason=reason)
        return BearerError(response)


def _app_validator(connection: HTTPConnection) -> Validator:
    validator = getattr(connection.app.state, VALIDATOR_STATE, None)
    if not isinstance(validator, Validator):
        raise RuntimeError(
            "no validator for this JWTBearer: pass one to JWTBearer(validator) "
            "or call jwkguard_fastapi.install(app, validator)"
        )
    return validator


_DEFAULT_SCHEME_NAMES: dict[type[SecurityBaseModel], str] = {
    HTTPBearerModel: "JWTBearer",
    OpenIdConnectModel: "OpenIDConnect",
    OAuth2Model: "OAuth2",
}


def _openapi_model(**scheme: Unpack[OpenAPIScheme]) -> SecurityBaseModel:
    unknown = sorted(scheme.keys() - OpenAPIScheme.__annotations__.keys())
    if unknown:
        raise TypeError(f"JWTBearer() got an unexpected keyword argument {unknown[0]!r}")
    description = scheme.get("description")
    openid_connect_url = scheme.get("openid_connect_url")
    authorization_url = scheme.get("authorization_url")
    token_url = scheme.get("token_url")
    if openid_connect_url is not None:
        if authorization_url or token_url:
            raise ConfigurationError(
                "give openid_connect_url or authorization_url and token_url, not both"
            )
        return OpenIdConnectModel(openIdConnectUrl=openid_connect_url, description=description)
    if authorization_url or token_url:
        if not (authorization_url and token_url):
            raise ConfigurationError("authorization_url and token_url go together")
        flow = OAuthFlowAuthorizationCode(
            authorizationUrl=authorization_url,
            tokenUrl=token_url,
            refreshUrl=scheme.get("refresh_url"),
            scopes=dict(scheme.get("scopes") or {}),
        )
        return OAuth2Model(flows=OAuthFlows(authorizationCode=flow), description=description)
    return HTTPBearerModel(bearerFormat="JWT", description=description)


def swagger_ui_oauth(
    client_id: str, *, scopes: tuple[str, ...] | list[str] = (), app_name: str | None = None
) -> dict[str, Any]:
    """Settings for ``FastAPI(swagger_ui_init_oauth=...)``: authorization code with PKCE.

    Swagger UI's Authorize dialog then logs in as a public client (no secret) using PKCE
    (RFC 7636), which the authorization code scheme of :meth:`JWTBearer.from_metadata` needs.
    """
    settings: dict[str, Any] = {"clientId": client_id, "usePkceWithAuthorizationCodeGrant": True}
    if scopes:
        settings["scopes"] = " ".join(scopes)
    if app_name:
        settings["appName"] = app_name
    return settings


bearer = JWTBearer()
"""The dependency behind :data:`CurrentClaims`, using the validator given to ``install``."""

optional_bearer = JWTBearer(auto_error=False)
"""The dependency behind :data:`OptionalClaims`: None when the request has no token."""

CurrentClaims = Annotated[Claims, Security(bearer)]
"""The verified claims of the request, with the validator given to ``install(app, ...)``."""

OptionalClaims = Annotated[Claims | None, Security(optional_bearer)]
"""The verified claims, or None when the request carries no token (bad tokens are refused)."""
