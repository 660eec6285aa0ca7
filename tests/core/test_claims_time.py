"""Time claims (RFC 7519 section 4.1.4-4.1.6): exp, nbf and iat, leeway, age and lifetime."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jwkguard import errors

from ..conftest import FakeClock
from ..helpers import Mint, refusal
from .conftest import Make


def test_exp_is_exclusive(make: Make, mint: Mint, clock: FakeClock) -> None:
    validator, token = make(), mint(lifetime=60)
    clock.advance(59)
    assert validator.validate(token)
    clock.advance(1)  # now == exp: RFC 7519 section 4.1.4 says "on or after"
    error = refusal(validator, token)
    assert (error.reason, error.claim, error.status_code, error.error) == (
        "expired",
        "exp",
        401,
        "invalid_token",
    )
    assert isinstance(error, errors.ExpiredToken)


def test_leeway_extends_exp(make: Make, mint: Mint, clock: FakeClock) -> None:
    validator, token = make(leeway=30), mint(lifetime=60)
    clock.advance(89)
    assert validator.validate(token)
    clock.advance(1)
    assert refusal(validator, token).reason == "expired"


def test_exp_is_required_by_default(make: Make, mint: Mint) -> None:
    error = refusal(make(), mint(omit=("exp",)))
    assert (error.reason, error.claim) == ("missing_claim", "exp")


def test_exp_may_be_made_optional(make: Make, mint: Mint) -> None:
    assert make(required_claims=()).validate(mint(omit=("exp",)))


@pytest.mark.parametrize("missing", ["jti", "sub"])
def test_required_claims_must_be_present(make: Make, mint: Mint, missing: str) -> None:
    error = refusal(make(required_claims=("exp", "jti", "sub")), mint(omit=(missing,)))
    assert (error.reason, error.claim) == ("missing_claim", missing)


def test_nbf_in_the_future_is_refused_unless_within_leeway(
    make: Make, mint: Mint, clock: FakeClock
) -> None:
    token = mint(nbf=int(clock.now) + 10)
    error = refusal(make(), token)
    assert (error.reason, error.claim) == ("not_yet_valid", "nbf")
    assert make(leeway=10).validate(token)
    clock.advance(10)  # now == nbf is valid
    assert make().validate(token)


def test_iat_in_the_future_is_refused_unless_within_leeway(
    make: Make, mint: Mint, clock: FakeClock
) -> None:
    token = mint(iat=int(clock.now) + 5, nbf=int(clock.now))
    error = refusal(make(), token)
    assert (error.reason, error.claim) == ("issued_in_future", "iat")
    assert make(leeway=5).validate(token)


def test_float_times_are_accepted(make: Make, mint: Mint, clock: FakeClock) -> None:
    token = mint(exp=clock.now + 0.5, iat=clock.now - 0.5, nbf=clock.now - 0.25)
    assert make().validate(token)["exp"] == clock.now + 0.5


@pytest.mark.parametrize(
    ("exp", "reason"),
    [(0, "expired"), (253402300799, None), (253402300800, "invalid_claim"), (-1, "invalid_claim")],
)
def test_exp_range_is_sane(make: Make, mint: Mint, exp: int, reason: str | None) -> None:
    token = mint(exp=exp)
    if reason is None:
        assert make().validate(token).expires_at == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    else:
        assert refusal(make(), token).reason == reason


def test_max_age_counts_from_iat(make: Make, mint: Mint, clock: FakeClock) -> None:
    validator, token = make(max_age=100), mint(lifetime=3600)
    clock.advance(100)
    assert validator.validate(token)
    clock.advance(1)
    error = refusal(validator, token)
    assert (error.reason, error.claim) == ("too_old", "iat")


def test_max_age_needs_iat(make: Make, mint: Mint) -> None:
    error = refusal(make(max_age=100), mint(omit=("iat",)))
    assert (error.reason, error.claim) == ("missing_claim", "iat")


def test_max_lifetime_limits_exp_minus_iat(make: Make, mint: Mint) -> None:
    assert make(max_lifetime=300).validate(mint(lifetime=300))
    error = refusal(make(max_lifetime=300), mint(lifetime=301))
    assert (error.reason, error.claim) == ("lifetime_too_long", "exp")


def test_max_lifetime_uses_nbf_without_iat_and_needs_one_of_them(make: Make, mint: Mint) -> None:
    assert refusal(make(max_lifetime=300), mint(lifetime=301, omit=("iat",))).reason == (
        "lifetime_too_long"
    )
    error = refusal(make(max_lifetime=300), mint(omit=("iat", "nbf")))
    assert (error.reason, error.claim) == ("missing_claim", "iat")
