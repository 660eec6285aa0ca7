"""Who issued the token and for whom: iss and aud (RFC 7519 section 4.1.1, 4.1.3), and the
client it was issued to (client_id, azp; RFC 9068 section 2.2)."""

from __future__ import annotations

from typing import Any

import pytest

from jwkguard import Issuer, Validator
from jwkguard.testing import SigningKey, generate_key, mint_token

from ..conftest import AUDIENCE, ISSUER, FakeClock
from ..helpers import Mint, refusal
from .conftest import Make


def test_several_issuers_each_with_their_own_keys_and_audiences(
    rsa_key: SigningKey, ec_key: SigningKey, clock: FakeClock
) -> None:
    other = "https://other.example.com"
    validator = Validator(
        issuers=[
            Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [rsa_key.public_jwk]}),
            Issuer(other, audiences=["urn:other"], jwks={"keys": [ec_key.public_jwk]}),
        ],
        algorithms=["RS256", "ES256"],
        clock=clock,
    )
    assert validator.validate(mint_token(ec_key, issuer=other, audience="urn:other", now=clock.now))
    # The unverified iss only picks an issuer; that issuer's keys and audiences then apply.
    crossed_key = mint_token(rsa_key, issuer=other, audience="urn:other", now=clock.now)
    assert refusal(validator, crossed_key).reason == "unknown_key"
    crossed_audience = mint_token(ec_key, issuer=other, audience=AUDIENCE, now=clock.now)
    assert refusal(validator, crossed_audience).reason == "audience_mismatch"


def test_a_token_signed_by_another_key_with_a_trusted_kid_is_a_bad_signature(
    make: Make, clock: FakeClock, rsa_key: SigningKey
) -> None:
    impostor = generate_key("RS256", kid=rsa_key.kid)
    token = mint_token(impostor, issuer=ISSUER, audience=AUDIENCE, now=clock.now)
    error = refusal(make(), token)
    assert (error.reason, error.description) == (
        "bad_signature",
        "The access token signature is invalid",
    )


def test_any_configured_audience_is_enough(make: Make, mint: Mint) -> None:
    validator = make({"audiences": ["urn:a", AUDIENCE]})
    assert validator.validate(mint(audience=["urn:b", AUDIENCE]))
    assert validator.validate(mint(audience="urn:a"))
    assert refusal(validator, mint(audience=["urn:b"])).reason == "audience_mismatch"


def test_issuer_without_audiences_skips_aud_but_checks_the_client(make: Make, mint: Mint) -> None:
    validator = make({"audiences": None, "allowed_client_ids": ["web"]})
    assert validator.validate(mint(audience=None, client_id="web"))
    assert validator.validate(mint(audience="anything", client_id="web"))


# -- client_id / azp ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "reason", "claim"),
    [
        ({"client_id": "web"}, None, None),
        ({"azp": "web"}, None, None),
        ({"client_id": "web", "azp": "other"}, None, None),
        ({"client_id": "other", "azp": "web"}, "client_not_allowed", "client_id"),
        ({"azp": "other"}, "client_not_allowed", "azp"),
        ({}, "missing_claim", "client_id"),
        ({"client_id": ["web"]}, "invalid_claim", "client_id"),
        ({"azp": 1}, "invalid_claim", "azp"),
    ],
)
def test_allowed_client_ids_read_client_id_then_azp(
    make: Make, mint: Mint, claims: dict[str, Any], reason: str | None, claim: str | None
) -> None:
    validator = make({"allowed_client_ids": ["web", "cli"]})
    token = mint(**claims)
    if reason is None:
        assert validator.validate(token)
    else:
        error = refusal(validator, token)
        assert (error.reason, error.claim) == (reason, claim)
