"""Typed claims: dataclasses, TypedDicts, pydantic models and the provider models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NotRequired, TypedDict

import pydantic
import pytest

from jwkguard import ConfigurationError
from jwkguard.errors import InvalidClaim
from jwkguard.testing import make_claims
from jwkguard.typed import (
    Auth0Claims,
    CognitoClaims,
    EntraClaims,
    KeycloakClaims,
    check_model,
    claims_as,
)


@dataclass(frozen=True)
class OrderClaims:
    sub: str
    tenant: str
    roles: list[str] = field(default_factory=list)
    level: int | None = None


class OrderDict(TypedDict):
    sub: str
    tenant: str
    level: NotRequired[int]


class OrderModel(pydantic.BaseModel):
    sub: str
    tenant: str
    level: int = 0


def test_a_dataclass_gets_its_fields_and_ignores_other_claims() -> None:
    claims = make_claims(subject="ann", tenant="t1", roles=["admin"], other="x")
    assert claims_as(claims, OrderClaims) == OrderClaims("ann", "t1", ["admin"])


@pytest.mark.parametrize("model", [OrderClaims, OrderDict, OrderModel])
def test_a_missing_claim_is_invalid_token_naming_the_claim(model: type) -> None:
    with pytest.raises(InvalidClaim) as caught:
        claims_as(make_claims(), model)
    error = caught.value
    assert (error.error, error.status_code, error.reason, error.claim) == (
        "invalid_token",
        401,
        "invalid_claim",
        "tenant",
    )
    assert "tenant" in error.description


@pytest.mark.parametrize("model", [OrderClaims, OrderDict, OrderModel])
def test_a_claim_of_the_wrong_type_is_invalid_token(model: type) -> None:
    with pytest.raises(InvalidClaim) as caught:
        claims_as(make_claims(tenant="t1", level="high"), model)
    assert caught.value.claim == "level"
    assert "wrong type" in caught.value.description


def test_a_typeddict_keeps_only_its_keys() -> None:
    assert claims_as(make_claims(subject="ann", tenant="t1", x=1), OrderDict) == {
        "sub": "ann",
        "tenant": "t1",
    }


def test_a_pydantic_model_is_validated_by_pydantic() -> None:
    assert claims_as(make_claims(subject="ann", tenant="t1", level=3), OrderModel) == OrderModel(
        sub="ann", tenant="t1", level=3
    )


def test_booleans_are_not_numbers() -> None:
    with pytest.raises(InvalidClaim):
        claims_as(make_claims(tenant="t1", level=True), OrderClaims)


def test_a_model_of_another_kind_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="dataclass, a TypedDict, a pydantic"):
        check_model(dict)


def test_entra() -> None:
    claims = make_claims(oid="o-1", tid="t-1", roles=["Admin"], scp="read write", azp="app")
    assert claims_as(claims, EntraClaims) == EntraClaims(
        oid="o-1", tid="t-1", roles=("Admin",), scp=("read", "write"), azp="app"
    )
    with pytest.raises(InvalidClaim) as caught:
        claims_as(make_claims(oid="o-1"), EntraClaims)
    assert caught.value.claim == "tid"


def test_auth0() -> None:
    typed = claims_as(make_claims(subject="auth0|1", permissions=["read:orders"]), Auth0Claims)
    assert typed == Auth0Claims(sub="auth0|1", permissions=("read:orders",))


def test_keycloak_realm_and_resource_roles() -> None:
    claims = make_claims(
        realm_access={"roles": ["user"]},
        resource_access={"orders-api": {"roles": ["writer"]}},
        preferred_username="ann",
    )
    typed = claims_as(claims, KeycloakClaims)
    assert typed.realm_roles == ("user",)
    assert typed.has_role("user")
    assert typed.has_role("writer", client="orders-api")
    assert not typed.has_role("writer")
    assert not typed.has_role("user", client="other")
    with pytest.raises(InvalidClaim) as caught:
        claims_as(make_claims(realm_access={"roles": [1]}), KeycloakClaims)
    assert caught.value.claim == "realm_access"


def test_cognito_groups() -> None:
    claims = make_claims(**{"cognito:groups": ["admins"], "client_id": "c1", "username": "ann"})
    assert claims_as(claims, CognitoClaims) == CognitoClaims(
        sub="user-123", username="ann", client_id="c1", groups=("admins",)
    )


@pytest.mark.parametrize(
    ("model", "claims", "at_fault"),
    [
        (EntraClaims, {"oid": "o-1", "tid": 7}, "tid"),  # a required string of another type
        (Auth0Claims, {"sub": "s", "azp": ["app"]}, "azp"),  # an optional string
        (Auth0Claims, {"sub": "s", "permissions": [1]}, "permissions"),  # a list of strings
        (CognitoClaims, {"sub": "s", "cognito:groups": {"a": 1}}, "cognito:groups"),  # renamed
    ],
)
def test_provider_models_name_the_claim_of_the_wrong_type(
    model: type[EntraClaims | Auth0Claims | CognitoClaims], claims: dict[str, object], at_fault: str
) -> None:
    with pytest.raises(InvalidClaim) as caught:
        model.from_claims(claims)
    assert caught.value.claim == at_fault
