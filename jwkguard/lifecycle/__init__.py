"""Lifecycle: tokens that are validly signed but belong to an identity that should be gone.

A :class:`Lifecycle` checks revocation, cut-offs, key distrust, replay and reuse after the
claims, against a :class:`LifecycleStore` (:class:`MemoryStore` in one process; see
:mod:`jwkguard.fleet` for Redis). :class:`LifecycleAdmin` changes that state with an audit
event each time; :class:`AuditTrail` writes it. See ``docs/lifecycle.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_namespace

if TYPE_CHECKING:
    from .._validator import LifecycleCheck
    from ._admin import LifecycleAdmin
    from ._audit import AUDIT_LOGGER, AuditTrail, fan_out, token_hash
    from ._policy import Lifecycle, ReuseWatch
    from ._replica import LifecycleChange, Replica
    from ._store import ChangeListener, LifecycleStore, MemoryStore, TokenUsage

__all__ = [
    "AUDIT_LOGGER",
    "AuditTrail",
    "ChangeListener",
    "Lifecycle",
    "LifecycleAdmin",
    "LifecycleChange",
    "LifecycleCheck",
    "LifecycleStore",
    "MemoryStore",
    "Replica",
    "ReuseWatch",
    "TokenUsage",
    "fan_out",
    "token_hash",
]

__getattr__, __dir__ = lazy_namespace(
    globals(),
    {
        "AUDIT_LOGGER": "._audit",
        "AuditTrail": "._audit",
        "ChangeListener": "._store",
        "Lifecycle": "._policy",
        "LifecycleAdmin": "._admin",
        "LifecycleChange": "._replica",
        "LifecycleCheck": ".._validator",
        "LifecycleStore": "._store",
        "MemoryStore": "._store",
        "Replica": "._replica",
        "ReuseWatch": "._policy",
        "TokenUsage": "._store",
        "fan_out": "._audit",
        "token_hash": "._audit",
    },
)
