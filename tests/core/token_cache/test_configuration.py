"""Configuring the token cache: one per validator, settings, clear."""

from __future__ import annotations

from typing import Any

import pytest

from jwkguard import ConfigurationError, TokenCache, build_validator
from jwkguard.testing import SigningKey

from ...conftest import AUDIENCE, ISSUER, FakeClock
from .kit import SwappableValidator, cache_of, make_validator, mint

# -- configuration ----------------------------------------------------------------------------


def test_one_cache_cannot_serve_two_validators(rsa_key: SigningKey, clock: FakeClock) -> None:
    shared = TokenCache()
    make_validator(rsa_key, clock, cache=shared)
    with pytest.raises(ConfigurationError, match="one Validator"):
        make_validator(rsa_key, clock, cache=shared)


@pytest.mark.parametrize(
    "value",
    [0, "yes", TokenCache, {"max_entries": 10, "ttl": 5}, {"max_entries": 0}, {"max_bytes": 1.5}],
)
def test_bad_cache_settings_fail_at_start_up(
    rsa_key: SigningKey, clock: FakeClock, value: Any
) -> None:
    with pytest.raises(ConfigurationError):
        make_validator(rsa_key, clock, cache=value)


def test_the_cache_can_be_configured_from_a_settings_mapping(rsa_key: SigningKey) -> None:
    validator = build_validator(
        {
            "ISSUERS": [
                {"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": {"keys": [rsa_key.public_jwk]}}
            ],
            "ALGORITHMS": ["RS256"],
            "TOKEN_CACHE": {"MAX_ENTRIES": 50, "max_bytes": 1_000_000},
        }
    )
    cache = cache_of(validator)
    assert (cache.max_entries, cache.max_bytes) == (50, 1_000_000)


def test_clear_empties_the_cache(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    validator.validate(token)
    cache_of(validator).clear()
    assert (len(cache_of(validator)), cache_of(validator).size_bytes) == (0, 0)
    validator.validate(token)
    assert validator.source.verifications == 2
