"""The ``Claims`` result of a validation (RFC 7519 section 4.1, RFC 9068).

The claim checks are in test_claims_*.py, one file per kind of claim.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jwkguard import Claims, TokenError
from jwkguard.testing import SigningKey

from ..conftest import AUDIENCE, ISSUER, FakeClock
from ..helpers import Mint, refusal
from .conftest import Make


def test_claims_expose_the_registered_claims_with_types(
    make: Make, mint: Mint, clock: FakeClock, rsa_key: SigningKey
) -> None:
    token = mint(scopes="a b", jti="id-1", client_id="web", lifetime=300)
    claims = make().validate(token)
    assert isinstance(claims, Claims)
    assert claims.subject == "user-123"
    assert claims.issuer == ISSUER
    assert claims.audiences == (AUDIENCE,)
    assert claims.scopes == frozenset({"a", "b"})
    assert claims.token_id == "id-1"
    assert claims.client_id == "web"
    assert claims.expires_at == datetime.fromtimestamp(int(clock.now) + 300, UTC)
    assert claims.issued_at == datetime.fromtimestamp(int(clock.now), UTC)
    assert claims.not_before == claims.issued_at
    assert claims.key_id == rsa_key.kid
    assert claims.thumbprint == rsa_key.thumbprint
    assert claims.header == {"alg": "RS256", "typ": "at+jwt", "kid": rsa_key.kid}


def test_claims_are_a_read_only_mapping_of_the_payload(make: Make, mint: Mint) -> None:
    claims = make().validate(mint(custom={"nested": [1, 2]}))
    assert claims["custom"] == {"nested": [1, 2]}
    assert "sub" in claims
    assert dict(claims)["sub"] == "user-123"
    assert len(claims) == len(dict(claims))
    with pytest.raises(TypeError):
        claims["sub"] = "admin"  # type: ignore[index]
    with pytest.raises(TypeError):
        claims.header["alg"] = "none"  # type: ignore[index]
    with pytest.raises(AttributeError):
        claims.subject = "admin"  # type: ignore[misc]


def test_claims_repr_does_not_contain_the_token(make: Make, mint: Mint) -> None:
    token = mint()
    claims = make().validate(token)
    assert token not in repr(claims)
    assert "user-123" in repr(claims)


def test_audiences_are_a_tuple_whether_aud_is_a_string_or_a_list(make: Make, mint: Mint) -> None:
    claims = make().validate(mint(audience=["https://other.example.com", AUDIENCE]))
    assert claims.audiences == ("https://other.example.com", AUDIENCE)


def test_optional_accessors_are_none_when_absent_or_of_another_type(make: Make, mint: Mint) -> None:
    claims = make(required_claims=()).validate(mint(omit=("jti", "exp", "iat", "nbf"), sub=5))
    assert (claims.subject, claims.token_id, claims.expires_at, claims.issued_at) == (
        None,
        None,
        None,
        None,
    )
    assert claims.client_id is None


@pytest.mark.anyio
async def test_avalidate_gives_the_same_claims_and_the_same_refusals(
    make: Make, mint: Mint, clock: FakeClock
) -> None:
    validator = make()
    token = mint(scopes="a")
    assert dict(await validator.avalidate(token)) == dict(validator.validate(token))
    clock.advance(301)
    with pytest.raises(TokenError) as caught:
        await validator.avalidate(token)
    assert caught.value.reason == refusal(validator, token).reason == "expired"
