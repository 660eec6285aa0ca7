"""An RFC 7662 introspection endpoint for ``LocalIssuer``, with client authentication."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

if TYPE_CHECKING:
    from ._issuer import LocalIssuer

__all__ = ["IntrospectionEndpoint"]

_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class IntrospectionEndpoint:
    """Answers introspection requests for tokens the issuer minted or was told about.

    Attributes:
        client_id: The only client allowed to introspect.
        client_secret: Its secret (``client_secret_basic`` / ``client_secret_post``).
        client_jwk: Its public JWK (``private_key_jwt``).
        opaque_tokens: Opaque token -> the claims to answer with (active).
        revoked: Tokens (or ``jti`` values) to answer ``active: false`` for.
        token_errors: Token -> ``(status, error)`` to answer with an RFC 6749 error instead,
            as servers do for a token they will not judge (``400 unsupported_token_type``).
        auth_methods_seen: The client authentication method of each request, in order.
    """

    issuer: LocalIssuer
    client_id: str
    client_secret: str | None = None
    client_jwk: Mapping[str, Any] | None = None
    opaque_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    token_errors: dict[str, tuple[int, str]] = field(default_factory=dict)
    auth_methods_seen: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The endpoint's URL."""
        return f"{self.issuer.url}/introspect"

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        """Serve one POST."""
        form = {k: v[0] for k, v in parse_qs(body.decode("ascii", "replace")).items()}
        method = self._authenticate(handler.headers.get("Authorization"), form)
        if method is None:
            self._send(handler, 401, {"error": "invalid_client"})
            return
        self.auth_methods_seen.append(method)
        token = form.get("token")
        if not token:
            self._send(handler, 400, {"error": "invalid_request"})
            return
        if token in self.token_errors:
            status, error = self.token_errors[token]
            self._send(handler, status, {"error": error})
            return
        self._send(handler, 200, self._answer(token))

    def _authenticate(self, authorization: str | None, form: dict[str, str]) -> str | None:
        if authorization and authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode("latin1")
            client_id, _, secret = decoded.partition(":")
            ok = unquote(client_id) == self.client_id and unquote(secret) == self.client_secret
            return "client_secret_basic" if ok else None
        if "client_secret" in form:
            ok = (
                form.get("client_id") == self.client_id
                and form["client_secret"] == self.client_secret
            )
            return "client_secret_post" if ok else None
        if form.get("client_assertion_type") == _ASSERTION_TYPE and self.client_jwk is not None:
            from jwkguard import Issuer, TokenError, Validator

            validator = Validator(
                issuers=[
                    Issuer(
                        self.client_id, audiences=[self.url], jwks={"keys": [dict(self.client_jwk)]}
                    )
                ],
                algorithms=["RS256", "ES256", "PS256", "EdDSA"],
            )
            try:
                claims = validator.validate(form.get("client_assertion", ""))
            except TokenError:
                return None
            return "private_key_jwt" if claims.subject == self.client_id else None
        return None

    def _answer(self, token: str) -> dict[str, Any]:
        if token in self.revoked:
            return {"active": False}
        if token in self.opaque_tokens:
            return {"active": True, **self.opaque_tokens[token]}
        from jwkguard import Issuer, TokenError, Validator

        validator = Validator(
            issuers=[
                Issuer(self.issuer.url, audiences=[self.issuer.audience], jwks=self.issuer.jwks())
            ],
            algorithms=[self.issuer.alg],
        )
        try:
            claims = validator.validate(token)
        except TokenError:
            return {"active": False}
        if claims.token_id in self.revoked:
            return {"active": False}
        return {"active": True, **dict(claims)}

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
