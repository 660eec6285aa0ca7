"""Errors raised by jwkguard.

Every rejection of a token raises a subclass of :class:`TokenError`, and nothing else.
Adapters read the attributes (``error``, ``status_code``, ``reason``, ``claim``,
``description``) rather than testing classes::

    JWKGuardError
     ├── ConfigurationError            bad settings, raised when objects are built
     └── TokenError                    a token was refused (401 by default)
          ├── InvalidRequest           the request itself is malformed (400)
          ├── MalformedToken           not a well-formed compact JWS
          ├── InvalidHeader            header policy (alg, crit, typ, b64)
          ├── KeyNotFound              no usable key for this token
          ├── InvalidSignature         the signature does not verify
          ├── InvalidClaim             a claim failed a check
          │    ├── ExpiredToken
          │    ├── NotYetValid
          │    ├── IssuerMismatch
          │    └── AudienceMismatch
          ├── InsufficientScope        valid token, missing scopes (403)
          ├── InsufficientUserAuthentication  step-up needed: acr or auth_time (RFC 9470)
          ├── InvalidDPoPProof         sender constraint not proven (RFC 9449)
          ├── UseDPoPNonce             a DPoP nonce is required
          ├── LifecycleError           revoked, cut off, replayed, distrusted key
          └── KeysUnavailable          no key material can be had right now (503)
               └── StoreUnavailable    the lifecycle store is down and policy is fail-closed

Descriptions never contain the token, and a bad signature says nothing more.
"""

from __future__ import annotations

__all__ = [
    "AudienceMismatch",
    "ConfigurationError",
    "ExpiredToken",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "IntrospectionUnavailable",
    "InvalidClaim",
    "InvalidDPoPProof",
    "InvalidHeader",
    "InvalidRequest",
    "InvalidSignature",
    "IssuerMismatch",
    "JWKGuardError",
    "KeyNotFound",
    "KeysUnavailable",
    "LifecycleError",
    "MalformedToken",
    "NotYetValid",
    "StoreUnavailable",
    "TokenError",
    "UseDPoPNonce",
]


class JWKGuardError(Exception):
    """Base of every exception jwkguard raises on purpose."""


class ConfigurationError(JWKGuardError, ValueError):
    """The configuration is invalid; raised when a validator or issuer is built."""


class TokenError(JWKGuardError):
    """A token was refused.

    Attributes:
        error: The RFC 6750 section 3.1 error code
            (``invalid_request``, ``invalid_token`` or ``insufficient_scope``).
        status_code: The HTTP status an adapter should answer with.
        reason: A stable machine-readable reason, e.g. ``expired``.
        claim: The claim at fault, if one is.
        description: A message safe to send to the client; never contains the token.
    """

    error: str = "invalid_token"
    status_code: int = 401
    default_reason: str = "invalid_token"

    def __init__(
        self,
        description: str = "The access token is invalid",
        *,
        reason: str | None = None,
        claim: str | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.reason = reason or self.default_reason
        self.claim = claim

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, claim={self.claim!r})"


class InvalidRequest(TokenError):
    """The request carrying the token is malformed (RFC 6750 ``invalid_request``)."""

    error = "invalid_request"
    status_code = 400
    default_reason = "invalid_request"


class MalformedToken(TokenError):
    """The token is not a well-formed compact JWS."""

    default_reason = "malformed"


class InvalidHeader(TokenError):
    """The JOSE header breaks the configured policy."""

    default_reason = "invalid_header"


class KeyNotFound(TokenError):
    """No usable key matches the token's header."""

    default_reason = "unknown_key"


class InvalidSignature(TokenError):
    """The signature does not verify."""

    default_reason = "bad_signature"

    def __init__(self) -> None:
        super().__init__("The access token signature is invalid", reason="bad_signature")


class InvalidClaim(TokenError):
    """A claim failed a check."""

    default_reason = "invalid_claim"


class ExpiredToken(InvalidClaim):
    """The token's ``exp`` has passed."""

    default_reason = "expired"


class NotYetValid(InvalidClaim):
    """The token's ``nbf`` is in the future."""

    default_reason = "not_yet_valid"


class IssuerMismatch(InvalidClaim):
    """The token's ``iss`` is not a configured issuer."""

    default_reason = "issuer_mismatch"


class AudienceMismatch(InvalidClaim):
    """The token's ``aud`` holds none of the configured audiences."""

    default_reason = "audience_mismatch"


class InsufficientScope(TokenError):
    """The token is valid but lacks required scopes (RFC 6750 ``insufficient_scope``).

    Attributes:
        required_scopes: The scopes the resource needs, for the ``scope`` challenge parameter.
    """

    error = "insufficient_scope"
    status_code = 403
    default_reason = "insufficient_scope"

    def __init__(
        self,
        description: str = "The access token lacks a required scope",
        *,
        required_scopes: frozenset[str] = frozenset(),
        reason: str | None = None,
        claim: str | None = None,
    ) -> None:
        super().__init__(description, reason=reason, claim=claim)
        self.required_scopes = required_scopes


class InsufficientUserAuthentication(TokenError):
    """The user's authentication is too weak or too old for this resource (RFC 9470 §3).

    The client should send the user back to the authorization server, asking for one of
    ``acr_values`` and a login no older than ``max_age`` seconds; adapters put both in the
    challenge.

    Attributes:
        acr_values: The authentication context classes the resource accepts, in order of
            preference (empty when only ``max_age`` is demanded).
        max_age: The largest age of the user's authentication (``auth_time``) accepted, in
            seconds, or None.
    """

    error = "insufficient_user_authentication"
    default_reason = "insufficient_user_authentication"

    def __init__(
        self,
        description: str = "A stronger or more recent user authentication is required",
        *,
        acr_values: tuple[str, ...] = (),
        max_age: int | None = None,
        reason: str | None = None,
        claim: str | None = None,
    ) -> None:
        super().__init__(description, reason=reason, claim=claim)
        self.acr_values = acr_values
        self.max_age = max_age


class InvalidDPoPProof(TokenError):
    """The DPoP proof is missing, invalid, or does not match the token (RFC 9449 section 7.1)."""

    error = "invalid_dpop_proof"
    default_reason = "dpop_proof_invalid"


class UseDPoPNonce(TokenError):
    """The server requires a DPoP nonce; ``nonce`` goes in the ``DPoP-Nonce`` header (§8)."""

    error = "use_dpop_nonce"
    default_reason = "dpop_nonce_required"

    def __init__(self, *, nonce: str) -> None:
        super().__init__("The DPoP proof must carry the server nonce")
        self.nonce = nonce


class LifecycleError(TokenError):
    """A validly signed token was revoked, cut off, replayed, or signed by a distrusted key."""

    default_reason = "revoked"


class KeysUnavailable(TokenError):
    """No key material can be had right now (the issuer is unreachable and nothing is cached).

    This is an outage, not a bad token: adapters answer 503 with ``Retry-After``.
    """

    error = "temporarily_unavailable"
    status_code = 503
    default_reason = "keys_unavailable"

    def __init__(
        self,
        description: str = "Signing keys are temporarily unavailable",
        *,
        reason: str | None = None,
        retry_after: int = 30,
    ) -> None:
        super().__init__(description, reason=reason)
        self.retry_after = retry_after


class StoreUnavailable(KeysUnavailable):
    """The lifecycle store (e.g. Redis) cannot be reached and the policy is fail-closed.

    Like :class:`KeysUnavailable` this is an outage, not a bad token: adapters answer 503
    with ``Retry-After``.
    """

    default_reason = "store_unavailable"

    def __init__(
        self,
        description: str = "Token lifecycle state is temporarily unavailable",
        *,
        reason: str | None = None,
        retry_after: int = 5,
    ) -> None:
        super().__init__(description, reason=reason, retry_after=retry_after)


class IntrospectionUnavailable(KeysUnavailable):
    """The introspection endpoint cannot be reached and the policy is fail-closed.

    An outage like :class:`KeysUnavailable`: adapters answer 503 with ``Retry-After``.
    """

    default_reason = "introspection_unavailable"
