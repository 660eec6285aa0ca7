"""One authentication step shared by the dependency, the backend and the middleware.

Everything works on the raw ASGI scope so that the pure ASGI middleware pays for no
request object, and every entry point applies the same extraction and checking rules.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal
from urllib.parse import parse_qsl

from starlette.datastructures import URL
from starlette.types import Scope

from jwkguard import (
    Claims,
    ConfigurationError,
    Credentials,
    ErrorResponse,
    Introspector,
    InvalidRequest,
    KeysUnavailable,
    PresentedRequest,
    SenderConstraints,
    TokenError,
    Validator,
    check_scopes,
    extract_credentials,
)

__all__ = ["Authenticator", "QueryPolicy", "close_reason"]

QueryPolicy = Literal["never", "websocket", "always"]
"""Where ``?access_token=`` is accepted: nowhere, on WebSocket handshakes only, or everywhere."""

_QUERY_POLICIES = ("never", "websocket", "always")
_QUERY_NAME = b"access_token"
# RFC 6455 section 5.5: a close frame's reason fits in 123 bytes.
_MAX_CLOSE_REASON = 123
WS_POLICY_VIOLATION = 1008
WS_TRY_AGAIN_LATER = 1013
# Where a request's sender-checked claims are kept, so that a second JWTBearer on the same
# route neither re-validates the token nor spends its DPoP proof twice.
_SENDER_CHECKED = "jwkguard_sender_checked"


class Authenticator:
    """Finds the access token of an ASGI connection and verifies it.

    Args:
        realm: The ``realm`` of ``WWW-Authenticate`` challenges.
        allow_query: Where the ``access_token`` query parameter is accepted (RFC 6750
            section 2.3 advises against it; browsers cannot set headers on WebSockets).
        websocket_subprotocol: A marker such as ``"bearer"``: a WebSocket client may then
            offer the subprotocols ``[marker, token]`` and the server selects ``marker``.
        sender_constraints: DPoP and certificate binding; by default, tokens bound to a key
            or a certificate are refused, since this server cannot check the binding.
        introspector: Also ask the authorization server whether the token is still active
            (RFC 7662), after it passed every local check (hybrid mode).
    """

    __slots__ = (
        "_allow_query",
        "_ws_allow_query",
        "constraints",
        "introspector",
        "realm",
        "subprotocol",
    )

    def __init__(
        self,
        *,
        realm: str = "api",
        allow_query: QueryPolicy = "never",
        websocket_subprotocol: str | None = None,
        sender_constraints: SenderConstraints | None = None,
        introspector: Introspector | None = None,
    ) -> None:
        if allow_query not in _QUERY_POLICIES:
            raise ConfigurationError(f"allow_query must be one of {', '.join(_QUERY_POLICIES)}")
        if websocket_subprotocol is not None and not websocket_subprotocol.strip():
            raise ConfigurationError("websocket_subprotocol must be a non-empty string or None")
        self.realm = realm
        self.subprotocol = websocket_subprotocol
        self.constraints = sender_constraints or SenderConstraints()
        self.introspector = introspector
        self._allow_query = allow_query == "always"
        self._ws_allow_query = allow_query != "never"

    def credentials(self, scope: Scope) -> Credentials | None:
        """The token of the connection, or None when it carries none.

        Raises:
            InvalidRequest: Several Authorization headers, a malformed one, a token in two
                places, or a token in the query string where that is not accepted.
        """
        authorization = [
            value.decode("latin-1") for name, value in scope["headers"] if name == b"authorization"
        ]
        websocket = scope["type"] == "websocket"
        found = extract_credentials(
            authorization,
            query_token=_query_token(scope.get("query_string", b"")),
            allow_query=self._ws_allow_query if websocket else self._allow_query,
        )
        if websocket and self.subprotocol is not None:
            offered = _subprotocol_token(scope.get("subprotocols") or (), self.subprotocol)
            if offered is not None:
                if found is not None:
                    raise InvalidRequest(
                        "The access token was sent in more than one place", reason="multiple_tokens"
                    )
                # Same b64token syntax check as for the header.
                found = extract_credentials([f"Bearer {offered}"], schemes=("Bearer",))
        return found

    async def authenticate(
        self, scope: Scope, validator: Validator, required_scopes: Collection[str] = ()
    ) -> Claims | None:
        """Verify the connection's token; None when there is none.

        The signature, claims, lifecycle checks and sender constraint all pass before the
        scopes are looked at, so a forged token never learns which scopes a route needs.

        Raises:
            TokenError: The token or the request is refused.
        """
        found = self.credentials(scope)
        if found is None:
            return None
        constraints = self.constraints
        state: dict[str, Any] = scope.setdefault("state", {})
        checked = state.get(_SENDER_CHECKED)
        claims: Claims
        if checked is not None and checked[0] == found.token and checked[1] is validator:
            claims = checked[2]
            constraints.check_required(claims)
        else:
            claims = await validator.avalidate(found.token)
            if "cnf" in claims or found.scheme != "Bearer" or not constraints.inactive:
                await constraints.acheck(claims, self.presented(scope, found))
                state[_SENDER_CHECKED] = (found.token, validator, claims)
        if self.introspector is not None:
            await self.introspector.aintrospect(found.token)
        if required_scopes:
            check_scopes(claims.scopes, required_scopes)
        return claims

    def presented(self, scope: Scope, found: Credentials) -> PresentedRequest:
        """What the sender constraints look at: scheme, method, URL, proofs, certificate.

        The client certificate comes from the ASGI TLS extension where the server provides
        it, or from the configured header of a trusted proxy.
        """
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        tls: dict[str, Any] = (scope.get("extensions") or {}).get("tls") or {}
        chain = tls.get("client_cert_chain") or ()
        constraints = self.constraints
        forwarded: list[str] = []
        if constraints.client_cert_header is not None:
            wanted = constraints.client_cert_header.lower().encode("latin-1")
            forwarded = [value.decode("latin-1") for name, value in headers if name == wanted]
        client = scope.get("client")
        return PresentedRequest(
            scheme=found.scheme,
            token=found.token,
            method=scope.get("method", "GET"),
            url=str(URL(scope=scope)),
            dpop_proofs=tuple(
                value.decode("latin-1") for name, value in headers if name == b"dpop"
            ),
            client_certificate=constraints.client_certificate(
                chain[0] if chain else None, forwarded, client[0] if client else None
            ),
        )

    def missing(self) -> ErrorResponse:
        """The 401 for a request without a token (RFC 6750 section 3.1: no error code)."""
        return self.constraints.refusal(None, realm=self.realm)

    def refusal(self, exc: TokenError, scope: Scope | None = None) -> ErrorResponse:
        """The 400, 401, 403 or 503 answer for a refused token.

        With the connection's ``scope``, a client that used the DPoP scheme gets a DPoP
        challenge (RFC 9449 section 7.1).
        """
        authorization: list[str] = []
        if scope is not None:
            headers: list[tuple[bytes, bytes]] = scope["headers"]
            authorization = [v.decode("latin-1") for k, v in headers if k == b"authorization"]
        return self.constraints.refusal(exc, realm=self.realm, authorization=authorization)

    def offered_subprotocol(self, scope: Scope) -> str | None:
        """The marker subprotocol to select when accepting, if the client offered it."""
        if self.subprotocol is not None and self.subprotocol in (scope.get("subprotocols") or ()):
            return self.subprotocol
        return None


def close_reason(exc: TokenError | None) -> tuple[int, str]:
    """WebSocket close code and reason: 1008 for a refused token, 1013 for a key outage."""
    if exc is None:
        return WS_POLICY_VIOLATION, "An access token is required"
    code = WS_TRY_AGAIN_LATER if isinstance(exc, KeysUnavailable) else WS_POLICY_VIOLATION
    reason = exc.description.encode()[:_MAX_CLOSE_REASON].decode("utf-8", "ignore")
    return code, reason


def _query_token(query_string: bytes) -> str | None:
    if _QUERY_NAME not in query_string:
        return None
    values = [
        value
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        if name == "access_token"
    ]
    if len(values) > 1:
        raise InvalidRequest(
            "The access token was sent in more than one place", reason="multiple_tokens"
        )
    return values[0] if values else None


def _subprotocol_token(offered: Collection[str], marker: str) -> str | None:
    protocols = list(offered)
    if marker not in protocols:
        return None
    position = protocols.index(marker)
    if protocols.count(marker) > 1 or position + 1 >= len(protocols):
        raise InvalidRequest(
            f"The WebSocket subprotocols must be [{marker!r}, <token>]",
            reason="malformed_subprotocol",
        )
    return protocols[position + 1]
