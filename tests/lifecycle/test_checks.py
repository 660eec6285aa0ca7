"""Each lifecycle check, against the in-memory store and against a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jwkguard import Event, Validator
from jwkguard.errors import LifecycleError
from jwkguard.lifecycle import LifecycleAdmin, LifecycleStore
from jwkguard.pipeline import error_response
from jwkguard.testing import SigningKey, mint_token

from ..conftest import AUDIENCE, ISSUER, FakeClock
from ..helpers import arefusal, mint, refusal
from .conftest import OTHER_ISSUER, close_async, sync_replica

# -- revocation -------------------------------------------------------------------------


def test_revoked_token_is_refused_with_reason_revoked_and_others_pass(
    validator: Validator, admin: LifecycleAdmin, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token, other = mint(rsa_key, clock), mint(rsa_key, clock)
    claims = validator.validate(token)
    admin.revoke_token(
        claims.token_id or "", issuer=ISSUER, expires_at=claims["exp"], by="ops", why="leaked"
    )
    error = refusal(validator, token)
    assert isinstance(error, LifecycleError)
    assert (error.reason, error.error, error.status_code) == ("revoked", "invalid_token", 401)
    response = error_response(error)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert validator.validate(other).token_id != claims.token_id


@pytest.mark.anyio
async def test_revocation_is_enforced_by_avalidate(
    validator: Validator,
    admin: LifecycleAdmin,
    store: LifecycleStore,
    rsa_key: SigningKey,
    clock: FakeClock,
) -> None:
    try:
        token = mint(rsa_key, clock, jti="tok-async")
        await validator.avalidate(token)
        await admin.arevoke_token(
            "tok-async", issuer=ISSUER, expires_at=clock.now + 300, by="ops", why="leaked"
        )
        assert (await arefusal(validator, token)).reason == "revoked"
    finally:
        await close_async(store)


def test_revocation_is_per_issuer(
    validator: Validator, admin: LifecycleAdmin, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, jti="shared-jti")
    admin.revoke_token(
        "shared-jti", issuer=OTHER_ISSUER, expires_at=clock.now + 300, by="ops", why="x"
    )
    assert validator.validate(token).token_id == "shared-jti"


def test_revocation_lasts_until_the_token_expires_then_leaves_the_replica(
    validator: Validator,
    admin: LifecycleAdmin,
    store: LifecycleStore,
    rsa_key: SigningKey,
    clock: FakeClock,
) -> None:
    token = mint(rsa_key, clock, lifetime=120)
    claims = validator.validate(token)
    expiry = datetime.fromtimestamp(claims["exp"], UTC)
    admin.revoke_token(claims.token_id or "", issuer=ISSUER, expires_at=expiry, by="o", why="w")
    clock.advance(119)
    assert refusal(validator, token).reason == "revoked"
    sync_replica(store)
    assert store.replica.counts()["revoked"] == 1
    clock.advance(2)
    assert refusal(validator, token).reason == "expired"
    sync_replica(store)
    assert store.replica.counts()["revoked"] == 0


# -- cut-offs ---------------------------------------------------------------------------


def test_subject_cut_off_refuses_tokens_issued_before_it_and_accepts_later_ones(
    validator: Validator, admin: LifecycleAdmin, rsa_key: SigningKey, clock: FakeClock
) -> None:
    before = mint(rsa_key, clock, subject="alice")
    bob = mint(rsa_key, clock, subject="bob")
    clock.advance(10)
    admin.cut_off_subject("alice", issuer=ISSUER, by="hr", why="offboarded")
    at_cutoff = mint(rsa_key, clock, subject="alice")  # iat == T is not "before T"
    clock.advance(5)
    after = mint(rsa_key, clock, subject="alice")
    error = refusal(validator, before)
    assert isinstance(error, LifecycleError)
    assert (error.reason, error.status_code) == ("subject_cut_off", 401)
    assert validator.validate(at_cutoff).subject == "alice"
    assert validator.validate(after).subject == "alice"
    assert validator.validate(bob).subject == "bob"


def test_subject_cut_off_refuses_a_token_without_iat(
    validator: Validator, admin: LifecycleAdmin, rsa_key: SigningKey, clock: FakeClock
) -> None:
    admin.cut_off_subject("alice", issuer=ISSUER, before=clock.now - 3600, by="hr", why="x")
    token = mint(rsa_key, clock, subject="alice", omit=("iat",))
    assert refusal(validator, token).reason == "subject_cut_off"


def test_subject_cut_off_applies_only_to_its_issuer(
    validator: Validator, admin: LifecycleAdmin, rsa_key: SigningKey, clock: FakeClock
) -> None:
    admin.cut_off_subject("alice", issuer=OTHER_ISSUER, by="hr", why="x")
    assert validator.validate(mint(rsa_key, clock, subject="alice")).subject == "alice"


@pytest.mark.parametrize("claim", ["client_id", "azp"])
def test_client_cut_off_refuses_the_clients_older_tokens(
    validator: Validator,
    admin: LifecycleAdmin,
    rsa_key: SigningKey,
    clock: FakeClock,
    claim: str,
) -> None:
    old = mint(rsa_key, clock, **{claim: "svc-batch"})
    unrelated = mint(rsa_key, clock, **{claim: "svc-web"})
    clock.advance(1)
    admin.cut_off_client("svc-batch", issuer=ISSUER, by="sec", why="credential leaked")
    fresh = mint(rsa_key, clock, **{claim: "svc-batch"})
    error = refusal(validator, old)
    assert (error.reason, error.status_code) == ("client_cut_off", 401)
    assert validator.validate(fresh).client_id == "svc-batch"
    assert validator.validate(unrelated).client_id == "svc-web"


@pytest.mark.anyio
async def test_cut_offs_are_enforced_by_avalidate(
    validator: Validator,
    admin: LifecycleAdmin,
    store: LifecycleStore,
    rsa_key: SigningKey,
    clock: FakeClock,
) -> None:
    try:
        by_subject = mint(rsa_key, clock, subject="carol")
        by_client = mint(rsa_key, clock, client_id="svc-x")
        clock.advance(1)
        await admin.acut_off_subject("carol", issuer=ISSUER, by="hr", why="left")
        await admin.acut_off_client("svc-x", issuer=ISSUER, by="sec", why="rotated")
        assert (await arefusal(validator, by_subject)).reason == "subject_cut_off"
        assert (await arefusal(validator, by_client)).reason == "client_cut_off"
    finally:
        await close_async(store)


# -- key distrust -----------------------------------------------------------------------


def test_distrusted_kid_is_refused_while_the_issuer_still_publishes_it(
    validator: Validator,
    admin: LifecycleAdmin,
    rsa_key: SigningKey,
    second_key: SigningKey,
    clock: FakeClock,
) -> None:
    admin.distrust_key(issuer=ISSUER, kid=rsa_key.kid, by="sec", why="HSM compromised")
    error = refusal(validator, mint(rsa_key, clock))
    assert isinstance(error, LifecycleError)
    assert (error.reason, error.status_code) == ("key_distrusted", 401)
    published = validator.key_source(ISSUER).current_keys()
    assert published is not None
    assert rsa_key.kid in {key.kid for key in published.keys}  # the issuer still publishes it
    assert validator.validate(mint(second_key, clock)).key_id == second_key.kid


def test_distrust_by_thumbprint_and_lifting_it(
    validator: Validator, admin: LifecycleAdmin, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    admin.distrust_key(issuer=ISSUER, thumbprint=rsa_key.thumbprint, by="sec", why="x")
    assert refusal(validator, token).reason == "key_distrusted"
    admin.trust_key(issuer=ISSUER, thumbprint=rsa_key.thumbprint, by="sec", why="false alarm")
    assert validator.validate(token).thumbprint == rsa_key.thumbprint


def test_distrust_is_per_issuer(
    validator: Validator, admin: LifecycleAdmin, rsa_key: SigningKey, clock: FakeClock
) -> None:
    admin.distrust_key(issuer=ISSUER, kid=rsa_key.kid, by="sec", why="x")
    other = mint_token(rsa_key, issuer=OTHER_ISSUER, audience=AUDIENCE, now=clock.now)
    assert validator.validate(other).issuer == OTHER_ISSUER
    assert refusal(validator, mint(rsa_key, clock)).reason == "key_distrusted"


@pytest.mark.anyio
async def test_distrust_and_trust_through_the_async_admin(
    validator: Validator,
    admin: LifecycleAdmin,
    store: LifecycleStore,
    rsa_key: SigningKey,
    clock: FakeClock,
) -> None:
    try:
        token = mint(rsa_key, clock)
        await admin.adistrust_key(issuer=ISSUER, kid=rsa_key.kid, by="sec", why="x")
        assert (await arefusal(validator, token)).reason == "key_distrusted"
        await admin.atrust_key(issuer=ISSUER, kid=rsa_key.kid, by="sec", why="y")
        assert (await validator.avalidate(token)).key_id == rsa_key.kid
    finally:
        await close_async(store)


# -- order and events -------------------------------------------------------------------


def test_the_key_is_judged_before_the_token_and_the_identity(
    validator: Validator, admin: LifecycleAdmin, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, jti="all-bad", subject="dave")
    clock.advance(1)
    admin.cut_off_subject("dave", issuer=ISSUER, by="a", why="b")
    assert refusal(validator, token).reason == "subject_cut_off"
    admin.revoke_token("all-bad", issuer=ISSUER, expires_at=clock.now + 600, by="a", why="b")
    assert refusal(validator, token).reason == "revoked"
    admin.distrust_key(issuer=ISSUER, kid=rsa_key.kid, by="a", why="b")
    assert refusal(validator, token).reason == "key_distrusted"


def test_lifecycle_applies_to_cached_tokens_too(
    store: LifecycleStore,
    admin: LifecycleAdmin,
    rsa_key: SigningKey,
    clock: FakeClock,
    events: list[Event],
) -> None:
    from jwkguard import Issuer
    from jwkguard.lifecycle import Lifecycle

    validator = Validator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [rsa_key.public_jwk]})],
        algorithms=["RS256"],
        clock=clock,
        lifecycle=Lifecycle(store, on_event=events.append),
        token_cache=True,
    )
    token = mint(rsa_key, clock, jti="cached")
    validator.validate(token)
    validator.validate(token)
    admin.revoke_token("cached", issuer=ISSUER, expires_at=clock.now + 300, by="a", why="b")
    assert refusal(validator, token).reason == "revoked"
