"""The admin API: audit events with who, when and why; input checks; force_refresh."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jwkguard import Event, TokenError, Validator
from jwkguard.errors import ConfigurationError
from jwkguard.lifecycle import (
    Lifecycle,
    LifecycleAdmin,
    LifecycleChange,
    LifecycleStore,
    MemoryStore,
)
from jwkguard.testing import LocalIssuer, SigningKey

from ..conftest import ISSUER, FakeClock
from .conftest import close_async, wait_until


def audit(events: list[Event]) -> list[Event]:
    return [e for e in events if e.detail.get("by")]


def test_every_operation_emits_an_audit_event_with_who_when_and_why(
    admin: LifecycleAdmin,
    validator: Validator,
    rsa_key: SigningKey,
    clock: FakeClock,
    events: list[Event],
) -> None:
    admin.revoke_token("t-1", issuer=ISSUER, expires_at=clock.now + 60, by="ana", why="leak")
    admin.cut_off_subject("bob", issuer=ISSUER, by="hr", why="left the company")
    admin.cut_off_client("svc", issuer=ISSUER, before=clock.now - 5, by="sec", why="rotated")
    admin.distrust_key(issuer=ISSUER, kid=rsa_key.kid, by="sec", why="compromised")
    admin.trust_key(issuer=ISSUER, thumbprint=rsa_key.thumbprint, by="sec", why="cleared")
    admin.force_refresh(ISSUER, by="ops", why="rotation")
    records = audit(events)
    assert [e.kind for e in records if e.kind != "refresh_requested"] == [
        "token_revoked",
        "subject_cut_off",
        "client_cut_off",
        "key_distrusted",
        "key_trusted",
        "force_refresh",
    ]
    assert all(e.issuer == ISSUER and e.timestamp == clock.now for e in records)
    revoked, subject, client, distrusted, trusted = records[:5]
    assert revoked.detail == {
        "by": "ana",
        "why": "leak",
        "op": "revoke_token",
        "value": "t-1",
        "at": clock.now + 60,
    }
    assert subject.detail["at"] == clock.now
    assert client.detail["at"] == clock.now - 5
    assert (distrusted.kid, distrusted.thumbprint) == (rsa_key.kid, None)
    assert (trusted.kid, trusted.thumbprint) == (None, rsa_key.thumbprint)
    assert distrusted.detail["why"] == "compromised"


@pytest.mark.anyio
async def test_async_operations_emit_the_same_audit_events(
    admin: LifecycleAdmin, store: LifecycleStore, clock: FakeClock, events: list[Event]
) -> None:
    try:
        change = await admin.arevoke_token(
            "t-2",
            issuer=ISSUER,
            expires_at=datetime.fromtimestamp(clock.now + 9, UTC),
            by="a",
            why="b",
        )
        await admin.aforce_refresh(ISSUER, by="a", why="b")
    finally:
        await close_async(store)
    assert change == LifecycleChange(
        op="revoke_token",
        issuer=ISSUER,
        value="t-2",
        at=clock.now + 9,
        by="a",
        why="b",
        timestamp=clock.now,
    )
    assert [e.kind for e in audit(events)][:2] == ["token_revoked", "force_refresh"]


def test_force_refresh_reaches_every_attached_validator(
    admin: LifecycleAdmin, validator: Validator, events: list[Event]
) -> None:
    # Static keys have nothing to refetch: the instance still reports the request.
    admin.force_refresh(ISSUER, by="ops", why="issuer rotated early")
    wait_until(lambda: any(e.kind == "refresh_requested" for e in events), timeout=2)
    requested = next(e for e in events if e.kind == "refresh_requested")
    assert requested.issuer == ISSUER
    assert requested.detail == {"by": "ops", "why": "issuer rotated early", "supported": False}


def test_force_refresh_for_an_issuer_this_instance_does_not_trust_is_ignored(
    admin: LifecycleAdmin, validator: Validator, events: list[Event]
) -> None:
    admin.force_refresh("https://unknown.example/", by="ops", why="x")
    admin.force_refresh(ISSUER, by="ops", why="marker")
    wait_until(lambda: any(e.kind == "refresh_requested" for e in events), timeout=2)
    assert [e.issuer for e in events if e.kind == "refresh_requested"] == [ISSUER]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: a.distrust_key(issuer=ISSUER, by="a", why="b"), "exactly one"),
        (lambda a: a.distrust_key(issuer=ISSUER, kid="k", thumbprint="t", by="a", why="b"), "one"),
        (lambda a: a.revoke_token("t", issuer=ISSUER, expires_at=1, by="", why="b"), "by"),
        (lambda a: a.revoke_token("t", issuer=ISSUER, expires_at=1, by="a", why=None), "why"),
        (lambda a: a.revoke_token("", issuer=ISSUER, expires_at=1, by="a", why="b"), "token_id"),
        (lambda a: a.revoke_token("t", issuer="", expires_at=1, by="a", why="b"), "issuer"),
        (
            lambda a: a.revoke_token("t", issuer=ISSUER, expires_at="soon", by="a", why="b"),
            "expires_at",
        ),
        (
            lambda a: a.cut_off_subject(
                "s", issuer=ISSUER, before=datetime(2030, 1, 1), by="a", why="b"
            ),
            "aware",
        ),
        (lambda a: a.cut_off_client("", issuer=ISSUER, by="a", why="b"), "client_id"),
    ],
)
def test_bad_admin_input_is_refused_before_anything_changes(
    call: object, message: str, clock: FakeClock, events: list[Event]
) -> None:
    store = MemoryStore(clock=clock)
    admin = LifecycleAdmin(store, clock=clock, on_event=events.append)
    with pytest.raises(ConfigurationError, match=message):
        call(admin)  # type: ignore[operator]
    assert not store.replica
    assert events == []


@pytest.mark.parametrize(
    ("call", "word"),
    [
        (lambda a: a.revoke_token("t", issuer=ISSUER, expires_at=1, by="a"), "why"),
        (lambda a: a.cut_off_subject("s", issuer=ISSUER, why="b"), "by"),
        (lambda a: a.distrust_key(kid="k", by="a", why="b"), "issuer"),
        (lambda a: a.trust_key(issuer=ISSUER, kid="k", by="a", why="b", reason="x"), "reason"),
        (lambda a: a.force_refresh(ISSUER, by="a", why="b", before=1), "before"),
        (lambda a: a.cut_off_client("c", ISSUER, by="a", why="b"), "positional"),
    ],
)
def test_a_missing_or_unknown_keyword_is_a_type_error_as_in_any_signature(
    call: object, word: str, clock: FakeClock, events: list[Event]
) -> None:
    """The operations take their keywords as typed options; the shared core still checks them."""
    store = MemoryStore(clock=clock)
    admin = LifecycleAdmin(store, clock=clock, on_event=events.append)
    with pytest.raises(TypeError, match=word):
        call(admin)  # type: ignore[operator]
    assert not store.replica
    assert events == []


def test_changes_round_trip_through_their_wire_form(clock: FakeClock) -> None:
    change = LifecycleChange(
        op="distrust_key",
        issuer=ISSUER,
        value="abc",
        key_field="thumbprint",
        by="a",
        why="b",
        timestamp=clock.now,
    )
    assert LifecycleChange.from_json(change.to_json()) == change


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"op": "drop_tables", "issuer": "x"}',
        '{"op": "revoke_token", "issuer": 5}',
        '{"op": "revoke_token", "issuer": "x", "value": 5}',
        '{"op": "revoke_token", "issuer": "x", "at": "later"}',
        '{"op": "distrust_key", "issuer": "x", "key_field": "n"}',
        '{"op": "revoke_token", "issuer": "x", "by": 1}',
        '{"op": "revoke_token", "issuer": "x", "timestamp": true}',
    ],
)
def test_malformed_wire_changes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by field
        LifecycleChange.from_json(text)


def test_force_refresh_makes_every_instance_refetch_the_issuers_keys(
    store: LifecycleStore, local_issuer: LocalIssuer, clock: FakeClock, events: list[Event]
) -> None:
    """The issuer dropped a compromised key: instances stop trusting it without waiting for
    their cache to expire."""
    lifecycle = Lifecycle(store, on_event=events.append)
    validator = Validator(
        issuers=[local_issuer.issuer_config(jwks_uri=local_issuer.jwks_uri)],
        algorithms=["RS256"],
        lifecycle=lifecycle,
    )
    lifecycle.attach(validator)
    admin = LifecycleAdmin(store, clock=clock, on_event=events.append)
    try:
        token = local_issuer.mint()
        validator.validate(token)
        local_issuer.rotate(retire_old=True)
        assert validator.validate(token).key_id  # still cached (max-age=300)
        admin.force_refresh(local_issuer.url, by="sec", why="key compromised")

        def refused() -> bool:
            try:
                validator.validate(token)
            except TokenError as exc:
                return exc.reason == "unknown_key"
            return False

        wait_until(refused, timeout=3.0)
        assert validator.validate(local_issuer.mint()).key_id == local_issuer.active_key.kid
        requested = [e for e in events if e.kind == "refresh_requested"]
        assert [e.detail["supported"] for e in requested] == [True]
    finally:
        validator.close()


def test_attaching_twice_acts_once_per_broadcast(
    store: LifecycleStore,
    lifecycle: Lifecycle,
    validator: Validator,
    admin: LifecycleAdmin,
    events: list[Event],
) -> None:
    lifecycle.attach(validator)  # the fixture attached it already
    admin.force_refresh(ISSUER, by="ops", why="once")
    wait_until(lambda: any(e.kind == "refresh_requested" for e in events), timeout=2)
    admin.force_refresh("https://unknown.example/", by="ops", why="marker")  # ordered after
    admin.force_refresh(ISSUER, by="ops", why="twice")
    wait_until(lambda: sum(e.kind == "refresh_requested" for e in events) >= 2, timeout=2)
    assert [e.detail["why"] for e in events if e.kind == "refresh_requested"] == ["once", "twice"]
