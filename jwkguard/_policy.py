"""Claim checks (RFC 7519 section 4.1, RFC 9068 section 4), compiled once per issuer."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._claims_result import read_scopes
from ._issuer import ClaimCheck
from .errors import (
    AudienceMismatch,
    ExpiredToken,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidClaim,
    IssuerMismatch,
    NotYetValid,
    TokenError,
)

__all__ = [
    "ClaimsPolicy",
    "check_any_scopes",
    "check_confirmation",
    "check_roles",
    "check_route_audience",
    "check_route_issuer",
    "check_scopes",
    "check_user_authentication",
]

logger = logging.getLogger("jwkguard.claims")

# Timestamps past the year 9999 are not sane NumericDates; they also overflow datetime.
_MAX_NUMERIC_DATE = 253402300799


def _numeric_date(payload: Mapping[str, Any], name: str) -> float | None:
    value: Any = payload.get(name)
    kind = type(value)
    # The common case first. Comparisons are False for NaN and the bound refuses infinity.
    if (kind is int or kind is float) and 0 <= value <= _MAX_NUMERIC_DATE:
        return value  # type: ignore[no-any-return]
    if value is None and name not in payload:
        return None
    if kind is not int and kind is not float:
        raise InvalidClaim(f"The '{name}' claim must be a number", claim=name)
    raise InvalidClaim(f"The '{name}' claim is out of range", claim=name)


def check_scopes(granted: frozenset[str], required: Collection[str]) -> None:
    """Raise ``InsufficientScope`` unless every required scope is granted."""
    if required and not granted.issuperset(required):
        raise InsufficientScope(
            "The access token lacks a required scope",
            required_scopes=frozenset(required),
            claim="scope",
        )


def check_any_scopes(granted: frozenset[str], accepted: frozenset[str]) -> None:
    """Raise ``InsufficientScope`` unless at least one of ``accepted`` is granted."""
    if accepted and granted.isdisjoint(accepted):
        raise InsufficientScope(
            "The access token holds none of the accepted scopes",
            required_scopes=accepted,
            claim="scope",
        )


def check_roles(
    granted: frozenset[str], required: frozenset[str], accepted: frozenset[str]
) -> None:
    """Raise ``InsufficientScope`` (reason ``insufficient_role``) unless the token holds every
    role of ``required`` and, when ``accepted`` is not empty, at least one of ``accepted``.

    Roles are not requested like scopes, so the challenge names no role: it is 403
    ``insufficient_scope`` with the reason in the body.
    """
    if required and not granted.issuperset(required):
        raise InsufficientScope(
            "The access token lacks a required role", reason="insufficient_role", claim="roles"
        )
    if accepted and granted.isdisjoint(accepted):
        raise InsufficientScope(
            "The access token holds none of the accepted roles",
            reason="insufficient_role",
            claim="roles",
        )


def check_route_issuer(issuer: object, accepted: frozenset[str]) -> None:
    """Refuse a token whose ``iss`` is not among the route's ``accepted`` issuers (401)."""
    if issuer not in accepted:
        raise IssuerMismatch(
            "This resource does not accept tokens from this issuer",
            reason="issuer_not_accepted",
            claim="iss",
        )


def check_route_audience(audiences: tuple[str, ...], accepted: frozenset[str]) -> None:
    """Refuse a token whose ``aud`` names none of the route's ``accepted`` audiences (401)."""
    if accepted.isdisjoint(audiences):
        raise AudienceMismatch(
            "The access token is not meant for this resource",
            reason="audience_not_accepted",
            claim="aud",
        )


def check_user_authentication(
    claims: Mapping[str, Any],
    *,
    acr_values: tuple[str, ...],
    max_age: int | None,
    now: float,
    leeway: float = 0,
) -> None:
    """Refuse a token whose user authentication is too weak or too old (RFC 9470 section 3).

    Args:
        claims: The verified claims; ``acr`` and ``auth_time`` are read (RFC 9068 section 2.2.1).
        acr_values: Accepted ``acr`` values (any, when empty).
        max_age: Largest accepted age of ``auth_time`` in seconds (any, when None).
        now: The current unix time.
        leeway: Clock tolerance in seconds.

    Raises:
        InsufficientUserAuthentication: With the route's ``acr_values`` and ``max_age``, for
            the challenge.
    """
    if acr_values:
        acr = claims.get("acr")
        if type(acr) is not str or acr not in acr_values:
            raise InsufficientUserAuthentication(
                "The user must authenticate with a stronger method",
                acr_values=acr_values,
                max_age=max_age,
                reason="acr_missing" if acr is None else "acr_not_allowed",
                claim="acr",
            )
    if max_age is not None:
        auth_time: Any = claims.get("auth_time")
        kind = type(auth_time)
        if (kind is not int and kind is not float) or not 0 <= auth_time <= _MAX_NUMERIC_DATE:
            raise InsufficientUserAuthentication(
                "The user must authenticate again",
                acr_values=acr_values,
                max_age=max_age,
                reason="auth_time_missing",
                claim="auth_time",
            )
        if now - auth_time > max_age + leeway:
            raise InsufficientUserAuthentication(
                "The user's authentication is too old for this resource",
                acr_values=acr_values,
                max_age=max_age,
                reason="authentication_too_old",
                claim="auth_time",
            )


# The confirmation methods a sender constraint can enforce, each a string:
# ``jkt`` (DPoP, RFC 9449 section 6.1) and ``x5t#S256`` (mTLS, RFC 8705 section 3.1).
_ENFORCEABLE_CONFIRMATIONS = frozenset({"jkt", "x5t#S256"})


def check_confirmation(cnf: Any) -> None:
    """Refuse a ``cnf`` claim (RFC 7800) that a sender constraint could not enforce.

    A confirmation claim means the issuer bound the token to a key the sender must prove it
    holds; a binding that cannot be checked must not fall back to a plain bearer token. Only
    a JSON object whose members are all enforceable (a non-empty string ``jkt`` or
    ``x5t#S256``) passes; ``cnf.jwk``, ``cnf.jwe``, ``cnf.kid``, ``cnf.jku``, unknown members,
    non-string values and an empty ``cnf`` are refused with reason ``cnf_unsupported``.
    """
    if type(cnf) is not dict or not cnf:
        raise InvalidClaim(
            "The access token's confirmation claim is malformed",
            reason="cnf_unsupported",
            claim="cnf",
        )
    for name, value in cnf.items():
        if name not in _ENFORCEABLE_CONFIRMATIONS:
            raise InvalidClaim(
                "The access token is bound by a confirmation method this server cannot check",
                reason="cnf_unsupported",
                claim="cnf",
            )
        if type(value) is not str or not value:
            raise InvalidClaim(
                "The access token's confirmation claim is malformed",
                reason="cnf_unsupported",
                claim="cnf",
            )


def _check_audience(audiences: frozenset[str], aud: Any) -> None:
    if type(aud) is str:
        if aud in audiences:
            return
    elif type(aud) is list:
        if not aud or not all(type(item) is str for item in aud):
            raise InvalidClaim("The 'aud' claim is malformed", claim="aud")
        if not audiences.isdisjoint(aud):
            return
    elif aud is None:
        raise InvalidClaim("The 'aud' claim is required", reason="missing_claim", claim="aud")
    else:
        raise InvalidClaim("The 'aud' claim is malformed", claim="aud")
    raise AudienceMismatch("The access token is not meant for this audience", claim="aud")


@dataclass(frozen=True, slots=True)
class ClaimsPolicy:
    """Every claim check for one issuer, with the validator's time settings."""

    issuer: str
    audiences: frozenset[str] | None
    leeway: float
    required_claims: tuple[str, ...]
    max_age: float | None
    max_lifetime: float | None
    scope_claim: str | None
    required_scopes: frozenset[str]
    allowed_client_ids: frozenset[str] | None
    claim_checks: Sequence[ClaimCheck]

    def check(self, payload: Mapping[str, Any], now: float) -> frozenset[str]:
        """Check the payload at time ``now``; return the granted scopes."""
        for name in self.required_claims:
            if name not in payload:
                raise InvalidClaim(
                    f"The '{name}' claim is required", reason="missing_claim", claim=name
                )
        if payload.get("iss") != self.issuer:
            raise IssuerMismatch("The access token issuer is not trusted", claim="iss")
        self.check_times(payload, now)
        audiences = self.audiences
        if audiences is not None:
            aud = payload.get("aud")
            # The common case inline: one audience string that is configured.
            if type(aud) is not str or aud not in audiences:
                _check_audience(audiences, aud)
        if self.allowed_client_ids is not None:
            self._check_client(payload)
        if "cnf" in payload:
            check_confirmation(payload["cnf"])
        for check in self.claim_checks:
            self._run_custom_check(check, payload)
        scopes = read_scopes(payload, self.scope_claim)
        if self.required_scopes:
            check_scopes(scopes, self.required_scopes)
        return scopes

    def check_times(self, payload: Mapping[str, Any], now: float) -> None:
        """The time-dependent checks alone (also re-run on cached tokens)."""
        leeway = self.leeway
        # An integer in range, the common case, is taken inline; anything else is decided
        # (and refused with its reason) by _numeric_date.
        exp = payload.get("exp")
        if type(exp) is not int or not 0 <= exp <= _MAX_NUMERIC_DATE:
            exp = _numeric_date(payload, "exp")
        nbf = payload.get("nbf")
        if type(nbf) is not int or not 0 <= nbf <= _MAX_NUMERIC_DATE:
            nbf = _numeric_date(payload, "nbf")
        iat = payload.get("iat")
        if type(iat) is not int or not 0 <= iat <= _MAX_NUMERIC_DATE:
            iat = _numeric_date(payload, "iat")
        if exp is not None and now >= exp + leeway:
            raise ExpiredToken("The access token has expired", claim="exp")
        if nbf is not None and now < nbf - leeway:
            raise NotYetValid("The access token is not valid yet", claim="nbf")
        if iat is not None and now < iat - leeway:
            raise InvalidClaim(
                "The access token was issued in the future", reason="issued_in_future", claim="iat"
            )
        if self.max_age is not None:
            if iat is None:
                raise InvalidClaim(
                    "The 'iat' claim is required", reason="missing_claim", claim="iat"
                )
            if now > iat + self.max_age + leeway:
                raise ExpiredToken(
                    "The access token is older than allowed", reason="too_old", claim="iat"
                )
        if self.max_lifetime is not None and exp is not None:
            start = iat if iat is not None else nbf
            if start is None:
                raise InvalidClaim(
                    "The 'iat' claim is required", reason="missing_claim", claim="iat"
                )
            if exp - start > self.max_lifetime:
                raise InvalidClaim(
                    "The access token lifetime is longer than allowed",
                    reason="lifetime_too_long",
                    claim="exp",
                )

    def _check_client(self, payload: Mapping[str, Any]) -> None:
        # RFC 9068 section 2.2 `client_id`; OpenID Connect `azp` when it is absent.
        claim = "client_id" if "client_id" in payload else "azp"
        client = payload.get(claim)
        if client is None:
            raise InvalidClaim(
                "The 'client_id' claim is required", reason="missing_claim", claim="client_id"
            )
        if type(client) is not str:
            raise InvalidClaim(f"The '{claim}' claim must be a string", claim=claim)
        if client not in self.allowed_client_ids:  # type: ignore[operator]
            raise InvalidClaim(
                "The access token was issued to a client that is not allowed",
                reason="client_not_allowed",
                claim=claim,
            )

    @staticmethod
    def _run_custom_check(check: ClaimCheck, payload: Mapping[str, Any]) -> None:
        try:
            outcome = check(payload)
        except TokenError:
            raise
        except Exception as exc:
            # A bug in a user's check must not become a 500; refuse the token and log it.
            logger.exception("custom claim check %r raised", check)
            raise InvalidClaim(
                "The access token failed a claim check", reason="custom_check_failed"
            ) from exc
        if outcome is False:
            raise InvalidClaim(
                "The access token failed a claim check", reason="custom_check_failed"
            )
