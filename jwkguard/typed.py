"""Typed claims: declare the claims your API expects and get them as a model.

::

    from dataclasses import dataclass
    from jwkguard.typed import claims_as

    @dataclass(frozen=True)
    class OrderClaims:
        sub: str
        tenant: str
        roles: list[str]

    claims = claims_as(validator.validate(token), OrderClaims)

Pydantic models, dataclasses, TypedDicts and classes with ``from_claims`` all work; a claim
that is missing or of the wrong type is refused as 401 ``invalid_token`` (reason
``invalid_claim``, with ``claim`` set), not a 422 or a 500. The provider models read the
shapes the presets know: Entra ID, Auth0, Keycloak and Cognito.
"""

from __future__ import annotations

from ._typed import (
    Auth0Claims,
    CognitoClaims,
    EntraClaims,
    KeycloakClaims,
    check_model,
    claims_as,
)

__all__ = [
    "Auth0Claims",
    "CognitoClaims",
    "EntraClaims",
    "KeycloakClaims",
    "check_model",
    "claims_as",
]
