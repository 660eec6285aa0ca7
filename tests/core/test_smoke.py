"""The core contract in brief: a good token passes, the usual bad ones fail with their reason."""

from __future__ import annotations

import pytest

from jwkguard import Claims, Issuer, TokenError, Validator
from jwkguard.testing import SigningKey, mint_token

from ..conftest import AUDIENCE, ISSUER, FakeClock


@pytest.fixture
def validator(rsa_key: SigningKey, clock: FakeClock) -> Validator:
    return Validator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [rsa_key.public_jwk]})],
        algorithms=["RS256"],
        clock=clock,
    )


def test_valid_token_returns_claims_with_key_evidence(
    validator: Validator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint_token(rsa_key, issuer=ISSUER, audience=AUDIENCE, scopes="a b", now=clock.now)
    claims = validator.validate(token)
    assert isinstance(claims, Claims)
    assert claims.subject == "user-123"
    assert claims.scopes == frozenset({"a", "b"})
    assert claims.key_id == "rsa-1"
    assert claims.thumbprint == rsa_key.thumbprint


@pytest.mark.anyio
async def test_avalidate_gives_the_same_result(
    validator: Validator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint_token(rsa_key, issuer=ISSUER, audience=AUDIENCE, now=clock.now)
    assert dict(await validator.avalidate(token)) == dict(validator.validate(token))


def test_expired_token_is_refused_as_expired(
    validator: Validator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint_token(rsa_key, issuer=ISSUER, audience=AUDIENCE, now=clock.now, lifetime=60)
    clock.advance(61)
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert (caught.value.reason, caught.value.claim, caught.value.status_code) == (
        "expired",
        "exp",
        401,
    )
