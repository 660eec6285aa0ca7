"""The audit trail: one JSON line per trust change or admin action, never a token."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from jwkguard import Event, Validator
from jwkguard.lifecycle import (
    AuditTrail,
    Lifecycle,
    LifecycleAdmin,
    MemoryStore,
    fan_out,
    token_hash,
)
from jwkguard.testing import LocalIssuer


def records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The audit records logged so far, each parsed from its one line."""
    lines = [r.getMessage() for r in caplog.records if r.name == "jwkguard.audit"]
    assert all("\n" not in line for line in lines)
    return [json.loads(line) for line in lines]


def test_key_changes_from_a_real_rotation_are_audited(
    local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jwkguard.audit")
    old = local_issuer.active_key
    with Validator(
        issuers=[local_issuer.issuer_config(cooldown=0)],
        algorithms=["RS256"],
        on_event=AuditTrail(),
    ) as validator:
        validator.validate(local_issuer.mint())
        new = local_issuer.rotate(retire_old=True)
        validator.validate(local_issuer.mint())
    trail = records(caplog)
    assert [(r["action"], r["kid"], r["thumbprint"]) for r in trail] == [
        ("key_added", old.kid, old.thumbprint),
        ("key_added", new.kid, new.thumbprint),
        ("key_removed", old.kid, old.thumbprint),
    ]
    assert all(r["issuer"] == local_issuer.url for r in trail)
    assert all(r["time"].endswith("+00:00") for r in trail)


def test_per_request_events_are_not_audited(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jwkguard.audit")
    audit = AuditTrail()
    audit(Event(kind="unknown_kid", issuer="https://id.example.com/", timestamp=1.0, kid="x"))
    audit(Event(kind="cooldown_hit", issuer="https://id.example.com/", timestamp=1.0))
    assert records(caplog) == []


def test_admin_actions_record_who_why_and_when(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jwkguard.audit")
    admin = LifecycleAdmin(MemoryStore(), clock=lambda: 1_800_000_000.0, on_event=AuditTrail())
    admin.distrust_key(
        issuer="https://id.example.com/", kid="k1", by="alice@ops", why="leaked in a repo"
    )
    admin.cut_off_subject("bob", issuer="https://id.example.com/", by="hr-bot", why="left")
    distrust, cut_off = records(caplog)
    assert distrust == {
        "time": "2027-01-15T08:00:00.000+00:00",
        "timestamp": 1_800_000_000.0,
        "action": "key_distrusted",
        "issuer": "https://id.example.com/",
        "kid": "k1",
        "thumbprint": None,
        "reason": "leaked in a repo",
        "actor": "alice@ops",
        "op": "distrust_key",
    }
    assert (cut_off["action"], cut_off["value"], cut_off["actor"]) == (
        "subject_cut_off",
        "bob",
        "hr-bot",
    )


def test_a_token_never_reaches_the_trail(
    local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jwkguard.audit")
    token = local_issuer.mint()
    audit = AuditTrail()
    audit.record(
        "token_revoked",
        issuer=local_issuer.url,
        reason="leak",
        token=token,
        note=token,
        nested={"bearer": f"{token}"},
    )
    (record,) = records(caplog)
    line = json.dumps(record)
    assert token not in line
    assert token.split(".")[1] not in line
    assert record["token"] == record["note"] == token_hash(token)
    assert record["nested"]["bearer"] == token_hash(token)
    assert token_hash(token).startswith("sha256:")
    assert len(token_hash(token)) == 23


def test_fan_out_calls_every_handler_even_after_one_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("observer bug")

    handler = fan_out(broken, lambda event: seen.append(event.kind))
    handler(Event(kind="key_added", issuer="i", timestamp=time.time()))
    assert seen == ["key_added"]
    assert "observer bug" in caplog.text


def test_validator_and_admin_share_one_trail_in_order(
    local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jwkguard.audit")
    store = MemoryStore()
    audit = AuditTrail()
    with Validator(
        issuers=[local_issuer.issuer_config()],
        algorithms=["RS256"],
        lifecycle=Lifecycle(store),
        on_event=audit,
    ) as validator:
        token = local_issuer.mint(now=time.time() - 5)
        validator.validate(token)
        LifecycleAdmin(store, on_event=audit).revoke_token(
            "jti-9", issuer=local_issuer.url, expires_at=time.time() + 60, by="a", why="b"
        )
    actions = [record["action"] for record in records(caplog)]
    assert actions == ["key_added", "token_revoked"]
