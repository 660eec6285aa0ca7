"""Scopes (RFC 6749 section 3.3, RFC 9068 section 2.2.3): where they are read, how they are
split, and the 403 insufficient_scope refusal."""

from __future__ import annotations

from typing import Any

import pytest

from jwkguard import InsufficientScope

from ..helpers import Mint, refusal
from .conftest import Make


@pytest.mark.parametrize(
    ("claims", "scope_claim", "granted"),
    [
        ({"scope": "a b  c"}, None, {"a", "b", "c"}),
        # RFC 6749 section 3.3: only SP separates; other whitespace is part of a scope token.
        ({"scope": "read\tadmin"}, None, {"read\tadmin"}),
        ({"scope": "read\u00a0admin"}, None, {"read\u00a0admin"}),
        ({"scope": "read\nadmin "}, None, {"read\nadmin"}),
        ({"scp": "read\u2003admin"}, None, {"read\u2003admin"}),
        ({"scp": ["a", "b"]}, None, {"a", "b"}),
        ({"scp": "a b"}, None, {"a", "b"}),
        ({"scope": "a", "scp": ["b"]}, None, {"a", "b"}),
        ({"scope": ["a", "b"]}, None, {"a", "b"}),  # some issuers send a list
        ({"scope": 7}, None, set()),
        ({"scp": [1, "b", None]}, None, {"b"}),
        ({"permissions": ["read:orders"]}, "permissions", {"read:orders"}),
        ({"realm_access": {"roles": ["admin"]}}, "realm_access.roles", {"admin"}),
        ({"realm_access": ["admin"]}, "realm_access.roles", set()),
        ({"cognito:groups": ["ops"]}, "cognito:groups", {"ops"}),
        ({"scope": "ignored", "permissions": "p q"}, "permissions", {"p", "q"}),
    ],
)
def test_scopes_are_read_where_the_issuer_publishes_them(
    make: Make, mint: Mint, claims: dict[str, Any], scope_claim: str | None, granted: set[str]
) -> None:
    validator = make({"scope_claim": scope_claim})
    assert validator.validate(mint(**claims)).scopes == frozenset(granted)


@pytest.mark.parametrize(
    "separator", ["\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2003", "\u3000"]
)
def test_a_scope_glued_by_whitespace_other_than_sp_grants_neither_scope(
    make: Make, mint: Mint, separator: str
) -> None:
    """RFC 6749 section 3.3: ``read<TAB>admin`` is one (odd) scope, not ``read`` and ``admin``."""
    validator = make()
    token = mint(scopes=f"read{separator}admin")
    for wanted in ("admin", "read"):
        error = refusal(validator, token, scopes=[wanted])
        assert (error.status_code, error.error) == (403, "insufficient_scope")
    assert validator.validate(token).scopes == frozenset({f"read{separator}admin"})


def test_required_scopes_given_as_a_string_split_on_sp_alone(make: Make, mint: Mint) -> None:
    validator = make()
    assert validator.validate(mint(scopes="read write"), scopes="read  write").scopes
    error = refusal(validator, mint(scopes="read write"), scopes="read\twrite")
    assert error.error == "insufficient_scope"


def test_validator_required_scopes_refuse_with_403_insufficient_scope(
    make: Make, mint: Mint
) -> None:
    validator = make(required_scopes=["read", "write"])
    assert validator.validate(mint(scopes="read write extra"))
    error = refusal(validator, mint(scopes="read"))
    assert isinstance(error, InsufficientScope)
    assert (error.error, error.status_code, error.reason, error.claim) == (
        "insufficient_scope",
        403,
        "insufficient_scope",
        "scope",
    )
    assert error.required_scopes == frozenset({"read", "write"})


@pytest.mark.parametrize("scopes", [["read"], ("read",), frozenset({"read"}), "read", "read  "])
def test_per_request_scopes_in_any_collection_or_a_space_separated_string(
    make: Make, mint: Mint, scopes: Any
) -> None:
    validator = make()
    assert validator.validate(mint(scopes="read"), scopes=scopes)
    assert refusal(validator, mint(scopes="write"), scopes=scopes).reason == "insufficient_scope"


def test_a_string_of_scopes_is_split_not_read_as_characters(make: Make, mint: Mint) -> None:
    error = refusal(make(), mint(scopes="r e a d"), scopes="read")
    assert isinstance(error, InsufficientScope)
    assert error.required_scopes == frozenset({"read"})
