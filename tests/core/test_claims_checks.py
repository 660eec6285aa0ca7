"""Checks beyond the registered claims: custom checks of the validator and the issuer, and the
lifecycle hook (revocation) that runs after them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from jwkguard import Claims, errors

from ..conftest import FakeClock
from ..helpers import Mint, refusal
from .conftest import Make


def test_custom_checks_of_validator_and_issuer_both_run(make: Make, mint: Mint) -> None:
    seen: list[str] = []

    def on_validator(payload: Mapping[str, Any]) -> None:
        seen.append("validator")

    def on_issuer(payload: Mapping[str, Any]) -> bool:
        seen.append("issuer")
        return payload.get("tenant") == "acme"

    validator = make({"claim_checks": [on_issuer]}, claim_checks=[on_validator])
    assert validator.validate(mint(tenant="acme"))
    assert seen == ["validator", "issuer"]
    assert refusal(validator, mint(tenant="evil")).reason == "custom_check_failed"


def test_a_custom_check_may_raise_its_own_token_error(make: Make, mint: Mint) -> None:
    def check(payload: Mapping[str, Any]) -> None:
        raise errors.InvalidClaim("Wrong tenant", reason="wrong_tenant", claim="tenant")

    error = refusal(make(claim_checks=[check]), mint())
    assert (error.reason, error.claim, error.description) == (
        "wrong_tenant",
        "tenant",
        "Wrong tenant",
    )


def test_a_crashing_custom_check_refuses_the_token_and_is_logged(
    make: Make, mint: Mint, caplog: pytest.LogCaptureFixture
) -> None:
    def check(payload: Mapping[str, Any]) -> None:
        raise KeyError("tenant")

    with caplog.at_level(logging.ERROR, logger="jwkguard.claims"):
        error = refusal(make(claim_checks=[check]), mint())
    assert error.reason == "custom_check_failed"
    assert "custom claim check" in caplog.text


# -- lifecycle hook --------------------------------------------------------------------------


class _Recorder:
    def __init__(self, refuse: bool = False) -> None:
        self.calls: list[tuple[str, str | None, float]] = []
        self.refuse = refuse

    def check(self, claims: Claims, now: float) -> None:
        self.calls.append(("sync", claims.token_id, now))
        if self.refuse:
            raise errors.LifecycleError("The access token was revoked", reason="revoked")

    async def acheck(self, claims: Claims, now: float) -> None:
        self.calls.append(("async", claims.token_id, now))
        if self.refuse:
            raise errors.LifecycleError("The access token was revoked", reason="revoked")


@pytest.mark.anyio
async def test_lifecycle_checks_run_after_the_claims_in_both_drivers(
    make: Make, mint: Mint, clock: FakeClock
) -> None:
    recorder = _Recorder()
    validator = make(lifecycle=recorder)
    validator.validate(mint(jti="t1"))
    await validator.avalidate(mint(jti="t2"))
    assert recorder.calls == [("sync", "t1", clock.now), ("async", "t2", clock.now)]
    # A token refused by the claims never reaches the lifecycle checks.
    refusal(validator, mint(jti="t3", audience="urn:other"))
    assert len(recorder.calls) == 2


def test_a_lifecycle_refusal_is_a_token_error(make: Make, mint: Mint) -> None:
    assert refusal(make(lifecycle=_Recorder(refuse=True)), mint()).reason == "revoked"
