"""What enters the token cache, and the scopes a hit still checks."""

from __future__ import annotations

import pytest

from jwkguard import TokenError
from jwkguard.testing import SigningKey, generate_key, mint_token, sign_compact

from ...conftest import AUDIENCE, ISSUER, FakeClock
from .kit import FakeLifecycle, SwappableValidator, cache_of, mint

# -- scopes -----------------------------------------------------------------------------------


def test_request_scopes_are_checked_on_every_hit_without_dropping_the_entry(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, scopes="orders:read")
    validator.validate(token, scopes=["orders:read"])
    with pytest.raises(TokenError) as caught:
        validator.validate(token, scopes=["orders:write"])
    assert (caught.value.error, caught.value.status_code) == ("insufficient_scope", 403)
    with pytest.raises(TokenError, match="scope"):
        validator.validate(token, scopes="orders:read orders:write")
    validator.validate(token, scopes=frozenset({"orders:read"}))
    assert len(cache_of(validator)) == 1
    assert validator.source.verifications == 1


# -- what never enters ------------------------------------------------------------------------


def test_failures_are_never_cached(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    other_key = generate_key("RS256", kid=rsa_key.kid)
    refused = [
        mint(other_key, clock),  # bad signature
        mint(rsa_key, clock, lifetime=-1),  # expired
        mint_token(rsa_key, issuer=ISSUER, audience="https://other.example", now=clock.now),
    ]
    for token in refused:
        for _ in range(2):
            with pytest.raises(TokenError):
                validator.validate(token)
    assert len(cache_of(validator)) == 0
    assert validator.source.verifications == 2 * len(refused)


def test_a_token_refused_by_the_lifecycle_on_first_sight_is_not_cached(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock, lifecycle: FakeLifecycle
) -> None:
    lifecycle.distrusted.add(rsa_key.thumbprint)
    token = mint(rsa_key, clock)
    with pytest.raises(TokenError, match="not trusted"):
        validator.validate(token)
    assert len(cache_of(validator)) == 0


def test_a_token_lacking_request_scopes_on_first_sight_is_not_cached(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, scopes="a")
    with pytest.raises(TokenError, match="scope"):
        validator.validate(token, scopes=["b"])
    assert len(cache_of(validator)) == 0


@pytest.mark.parametrize(
    "token",
    [
        "not a token",
        "a.b",
        "a.b.c.d.e",
        "éé.éé.éé",
        "\udc80.x.y",
        b"\xff\xfe.x.y",
        "x" * 9000,
    ],
)
def test_malformed_tokens_never_enter(validator: SwappableValidator, token: str | bytes) -> None:
    for _ in range(2):
        with pytest.raises(TokenError):
            validator.validate(token)
    assert len(cache_of(validator)) == 0


def test_a_hit_for_a_tampered_copy_is_impossible(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    validator.validate(token)
    signature = token.rsplit(".", 1)[1]
    forged = sign_compact(
        {"alg": "RS256", "kid": rsa_key.kid, "typ": "at+jwt"},
        {"iss": ISSUER, "aud": AUDIENCE, "exp": int(clock.now) + 60, "sub": "admin"},
    )
    with pytest.raises(TokenError, match="signature"):
        validator.validate(f"{forged.rsplit('.', 1)[0]}.{signature}")
    assert len(cache_of(validator)) == 1
