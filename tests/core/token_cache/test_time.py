"""Time on a hit: expiry, leeway, max_age, nbf, the validity window."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jwkguard import TokenError
from jwkguard._policy import ClaimsPolicy
from jwkguard._token_cache import _deep_size, validity_window
from jwkguard.testing import SigningKey

from ...conftest import AUDIENCE, ISSUER, FakeClock
from .kit import SwappableValidator, cache_of, make_validator, mint

# -- time -------------------------------------------------------------------------------------


def test_a_token_that_expires_between_two_hits_is_refused_and_dropped(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, lifetime=60)
    validator.validate(token)
    clock.advance(59)
    validator.validate(token)
    clock.advance(1)
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert (caught.value.reason, caught.value.claim) == ("expired", "exp")
    assert len(cache_of(validator)) == 0
    assert validator.source.verifications == 1


def test_leeway_applies_to_hits_as_to_full_validation(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    validator = make_validator(rsa_key, clock, leeway=30)
    token = mint(rsa_key, clock, lifetime=60)
    validator.validate(token)
    clock.advance(89)
    validator.validate(token)
    clock.advance(1)
    with pytest.raises(TokenError, match="expired"):
        validator.validate(token)


def test_max_age_is_rechecked_on_a_hit(rsa_key: SigningKey, clock: FakeClock) -> None:
    validator = make_validator(rsa_key, clock, max_age=100)
    token = mint(rsa_key, clock, lifetime=3600)
    validator.validate(token)
    clock.advance(100)
    validator.validate(token)
    clock.advance(0.5)
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert (caught.value.reason, caught.value.claim) == ("too_old", "iat")


def test_nbf_is_rechecked_when_the_clock_steps_back(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, nbf=int(clock.now) + 10, iat=int(clock.now) - 5)
    clock.advance(10)
    validator.validate(token)
    clock.advance(-1)  # e.g. an NTP step backwards
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert (caught.value.reason, caught.value.claim) == ("not_yet_valid", "nbf")
    assert len(cache_of(validator)) == 0


@settings(max_examples=150, deadline=None)
@given(
    exp=st.one_of(st.none(), st.integers(0, 4_000_000_000)),
    nbf=st.one_of(st.none(), st.integers(0, 4_000_000_000)),
    iat=st.one_of(st.none(), st.integers(0, 4_000_000_000), st.floats(0, 4e9)),
    leeway=st.sampled_from([0.0, 1.0, 30.0, 0.25]),
    max_age=st.one_of(st.none(), st.sampled_from([1.0, 60.0, 3600.5])),
    offset=st.floats(-200, 200),
)
def test_the_validity_window_agrees_with_check_times(
    exp: int | None,
    nbf: int | None,
    iat: float | None,
    leeway: float,
    max_age: float | None,
    offset: float,
) -> None:
    payload = {
        name: value
        for name, value in (("exp", exp), ("nbf", nbf), ("iat", iat))
        if value is not None
    }
    policy = ClaimsPolicy(
        issuer=ISSUER,
        audiences=frozenset({AUDIENCE}),
        leeway=leeway,
        required_claims=(),
        max_age=max_age,
        max_lifetime=None,
        scope_claim=None,
        required_scopes=frozenset(),
        allowed_client_ids=None,
        claim_checks=(),
    )
    valid_from, valid_until = validity_window(policy, payload)
    anchors = [float(v) for v in payload.values()] or [1_800_000_000.0]
    for anchor in anchors:
        for now in (anchor + offset, anchor + leeway, anchor - leeway, anchor + (max_age or 0)):
            try:
                policy.check_times(payload, now)
            except TokenError:
                passes = False
            else:
                passes = True
            assert (valid_from <= now < valid_until) == passes, (payload, now)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=50, deadline=None)
@given(payload=st.dictionaries(st.text(), json_values, max_size=12))
def test_the_size_estimate_never_undercounts(payload: dict[str, Any]) -> None:
    exact = 0
    pending: list[Any] = [payload]
    while pending:
        item = pending.pop()
        exact += sys.getsizeof(item)
        if isinstance(item, dict):
            pending += [*item, *item.values()]
        elif isinstance(item, list):
            pending += item
    assert _deep_size(payload) >= exact
