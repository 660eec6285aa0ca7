"""The core contract in brief: a good token passes, the usual bad ones fail with their reason."""

from __future__ import annotations

import pytest

from jwkguard import Claims, TokenError, Validator
from jwkguard.testing import SigningKey

from ..conftest import FakeClock
from ..helpers import mint, validator_trusting


@pytest.fixture
def validator(rsa_key: SigningKey, clock: FakeClock) -> Validator:
    return validator_trusting(rsa_key, clock=clock)


def test_valid_token_returns_claims_with_key_evidence(
    validator: Validator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, scopes="a b", now=clock.now)
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
    token = mint(rsa_key, clock)
    assert dict(await validator.avalidate(token)) == dict(validator.validate(token))


def test_expired_token_is_refused_as_expired(
    validator: Validator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, lifetime=60)
    clock.advance(61)
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert (caught.value.reason, caught.value.claim, caught.value.status_code) == (
        "expired",
        "exp",
        401,
    )
