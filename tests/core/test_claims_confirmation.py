"""Confirmation claims (cnf, RFC 7800): one that cannot be enforced refuses the token; an
enforceable one is left to the sender check."""

from __future__ import annotations

from typing import Any

import pytest

from jwkguard import errors

from ..helpers import Mint, refusal
from .conftest import Make


@pytest.mark.parametrize(
    "cnf",
    [
        {
            "jwk": {
                "kty": "EC",
                "crv": "P-256",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
            }
        },  # RFC 7800 section 3.2
        {"jwe": "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkExMjhDQkMtSFMyNTYifQ.x.y.z.w"},
        {"kid": "dfd1aa97-6d8d-4575-a0fe-34b96de2bfad"},
        {"jku": "https://keys.example.com/jwks", "kid": "k1"},
        {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", "jwk": {"kty": "EC"}},
        {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2", "osc": "x"},
        {"future-method": "x"},
        {"jkt": {"value": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}},
        {"jkt": ["0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"]},
        {"jkt": 1},
        {"jkt": None},
        {"jkt": ""},
        {"x5t#S256": ["bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"]},
        {"x5t#S256": None},
        {},
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        ["jkt"],
        None,
        True,
        0,
    ],
    ids=repr,
)
def test_a_confirmation_that_cannot_be_enforced_refuses_the_token(
    make: Make, mint: Mint, cnf: Any
) -> None:
    """A ``cnf`` means the issuer bound the token: one we cannot check is never a bearer token."""
    error = refusal(make(), mint(cnf=cnf))
    assert isinstance(error, errors.InvalidClaim)
    assert (error.status_code, error.error, error.reason, error.claim) == (
        401,
        "invalid_token",
        "cnf_unsupported",
        "cnf",
    )


@pytest.mark.parametrize(
    "cnf",
    [
        {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
        {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"},
        {
            "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
            "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2",
        },
    ],
)
def test_an_enforceable_confirmation_passes_validation_for_the_sender_check(
    make: Make, mint: Mint, cnf: dict[str, str]
) -> None:
    """``jkt`` and ``x5t#S256`` pass the validator; ``SenderConstraints`` then enforces them."""
    assert make().validate(mint(cnf=cnf))["cnf"] == cnf


def test_a_refused_confirmation_is_refused_again_and_never_cached_as_valid(
    make: Make, mint: Mint
) -> None:
    validator = make(token_cache=True)
    token = mint(cnf={"jwk": {"kty": "EC"}})
    for _ in range(2):
        assert refusal(validator, token).reason == "cnf_unsupported"
