"""The in-memory DPoP replay ledger: one caller cannot fill it for everyone (issue 14, §5).

A valid DPoP-bound token lets its holder mint proofs at will. Each one the ledger accepts is
remembered for the proof window; the ledger holds a quota per DPoP key, so a flood fills only
the flooder's share and is refused, while every other key's proofs are still accepted. No live
entry is ever forgotten early: that would reopen the replay window it guards.
"""

from __future__ import annotations

from typing import Any

import pytest

from jwkguard import Claims, ConfigurationError, Validator, errors
from jwkguard.sender import DPoPVerifier, MemoryReplayLedger, PresentedRequest, SenderConstraints
from jwkguard.testing import SigningKey, generate_key, make_dpop_proof

from ..conftest import FakeClock
from ..helpers import mint, validator_trusting

URL = "https://api.example.com/orders"
TTL = 65.0
NOW = 1_800_000_000.0


def _refusal(ledger: MemoryReplayLedger, key: str, now: float = NOW) -> errors.TokenError:
    with pytest.raises(errors.TokenError) as caught:
        ledger.first_use(key, TTL, now)
    return caught.value


# -- the ledger, told the time ------------------------------------------------------------------


def test_a_flooding_key_is_refused_at_its_quota_and_no_other_key_is() -> None:
    ledger = MemoryReplayLedger(max_entries=100, max_entries_per_key=3)
    for n in range(3):
        assert ledger.first_use(f"dpop:flooder:{n}", TTL, NOW)
    for n in range(3, 50):
        refused = _refusal(ledger, f"dpop:flooder:{n}")
        assert isinstance(refused, errors.InvalidDPoPProof)
        assert (refused.status_code, refused.reason) == (401, "dpop_proof_quota")
    for victim in range(20):
        assert ledger.first_use(f"dpop:victim-{victim}:1", TTL, NOW)
    assert ledger.size == 3 + 20  # refused proofs take no room


def test_a_flooding_key_never_pushes_out_a_live_entry_so_replays_stay_refused() -> None:
    ledger = MemoryReplayLedger(max_entries=100, max_entries_per_key=3)
    assert ledger.first_use("dpop:victim:spent", TTL, NOW)
    for n in range(3):
        assert ledger.first_use(f"dpop:flooder:{n}", TTL, NOW)
    for n in range(3, 20):
        _refusal(ledger, f"dpop:flooder:{n}")
    # Every proof spent before the flood is still refused as a replay, until its window ends.
    assert ledger.first_use("dpop:victim:spent", TTL, NOW + TTL - 0.001) is False
    for n in range(3):
        assert ledger.first_use(f"dpop:flooder:{n}", TTL, NOW + TTL - 0.001) is False


def test_a_key_gets_its_quota_back_as_its_proofs_expire() -> None:
    ledger = MemoryReplayLedger(max_entries=100, max_entries_per_key=2)
    assert ledger.first_use("dpop:k:a", TTL, NOW)
    assert ledger.first_use("dpop:k:b", TTL, NOW + 10)
    assert _refusal(ledger, "dpop:k:c", NOW + 20).reason == "dpop_proof_quota"
    assert ledger.first_use("dpop:k:c", TTL, NOW + TTL)  # "a" expired: one slot back
    assert _refusal(ledger, "dpop:k:d", NOW + TTL).reason == "dpop_proof_quota"
    assert ledger.first_use("dpop:k:b", TTL, NOW + TTL + 10)  # expired, so a first use again
    assert ledger.size == 2


def test_a_clock_step_back_cannot_make_expired_entries_hold_a_quota() -> None:
    """Entries out of expiry order (a clock stepped back) are swept when the quota is hit."""
    ledger = MemoryReplayLedger(max_entries=100, max_entries_per_key=2)
    assert ledger.first_use("dpop:k:late", TTL, NOW + 100)
    assert ledger.first_use("dpop:k:early", TTL, NOW)
    assert ledger.first_use("dpop:k:next", TTL, NOW + 100 + TTL)  # both have expired


def test_a_full_ledger_refuses_with_503_and_still_forgets_nothing() -> None:
    """Full of live entries (many bound keys at once), refusing beats accepting unchecked."""
    ledger = MemoryReplayLedger(max_entries=6, max_entries_per_key=3)
    for owner in ("a", "b"):
        for n in range(3):
            assert ledger.first_use(f"dpop:{owner}:{n}", TTL, NOW)
    full = _refusal(ledger, "dpop:c:0", NOW + 1)
    assert isinstance(full, errors.StoreUnavailable)
    assert (full.status_code, full.error, full.reason) == (
        503,
        "temporarily_unavailable",
        "dpop_ledger_full",
    )
    assert ledger.first_use("dpop:a:0", TTL, NOW + 1) is False
    assert ledger.size == 6
    assert ledger.first_use("dpop:c:0", TTL, NOW + TTL)  # room again once entries expire
    assert ledger.size == 1


def test_keys_without_an_owner_share_one_quota() -> None:
    ledger = MemoryReplayLedger(max_entries=10, max_entries_per_key=2)
    assert ledger.first_use("plain-1", TTL, NOW)
    assert ledger.first_use("plain-2", TTL, NOW)
    assert _refusal(ledger, "plain-3").reason == "dpop_proof_quota"
    assert ledger.first_use("plain-1", TTL, NOW) is False


@pytest.mark.parametrize(
    "options",
    [
        {"max_entries": 0},
        {"max_entries_per_key": 0},
        {"max_entries": 10, "max_entries_per_key": 11},
        {"max_entries": 1.5},
        {"max_entries_per_key": True},
    ],
)
def test_bounds_are_checked_when_the_ledger_is_built(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        MemoryReplayLedger(**options)


# -- through the verifier, with real proofs --------------------------------------------------


@pytest.fixture
def validator(rsa_key: SigningKey, clock: FakeClock) -> Validator:
    return validator_trusting(rsa_key, clock=clock)


def _bound(
    validator: Validator, rsa_key: SigningKey, key: SigningKey, clock: FakeClock
) -> tuple[str, Claims]:
    token = mint(rsa_key, clock, cnf={"jkt": key.thumbprint})
    return token, validator.validate(token)


def _request(token: str, key: SigningKey, clock: FakeClock) -> PresentedRequest:
    proof = make_dpop_proof(key, method="GET", url=URL, access_token=token, iat=clock.now)
    return PresentedRequest(scheme="DPoP", token=token, method="GET", url=URL, dpop_proofs=(proof,))


@pytest.mark.anyio
async def test_one_token_holder_minting_proofs_cannot_lock_out_another(
    validator: Validator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    ledger = MemoryReplayLedger(max_entries=50, max_entries_per_key=10)
    constraints = SenderConstraints(dpop=DPoPVerifier(clock=clock, replay=ledger))
    flooder_key, victim_key = generate_key("ES256"), generate_key("ES256")
    flooder, flooder_claims = _bound(validator, rsa_key, flooder_key, clock)
    victim, victim_claims = _bound(validator, rsa_key, victim_key, clock)
    first = _request(flooder, flooder_key, clock)
    constraints.check(flooder_claims, first)
    for _ in range(9):
        await constraints.acheck(flooder_claims, _request(flooder, flooder_key, clock))
    for _ in range(30):
        with pytest.raises(errors.InvalidDPoPProof) as caught:
            constraints.check(flooder_claims, _request(flooder, flooder_key, clock))
        assert caught.value.reason == "dpop_proof_quota"
    for _ in range(5):  # the victim's own quota: 5 + 5 proofs
        assert constraints.check(victim_claims, _request(victim, victim_key, clock)) is not None
        assert await constraints.acheck(victim_claims, _request(victim, victim_key, clock))
    with pytest.raises(errors.InvalidDPoPProof) as replayed:
        constraints.check(flooder_claims, first)
    assert replayed.value.reason == "dpop_replayed"
    clock.advance(TTL)
    assert constraints.check(flooder_claims, _request(flooder, flooder_key, clock)) is not None
