"""Lifecycle state in Django's database: revocation across processes without Redis.

Every process keeps a local :class:`~jwkguard.fleet.Replica`-backed copy of the revocations,
cut-offs and distrusted keys, so the hot path never queries the database. A background thread
polls the change table (``LifecycleRecord``) by ``id`` every ``poll_interval`` seconds and
reloads the whole state (``LifecycleEntry``) every ``resync_interval`` seconds. A change made
in one process is therefore enforced by every other within ``poll_interval`` plus the poll's
own duration; the process that made it enforces it at once.

Writes go through the database in one transaction (the change row and the entry). The replay
ledger is a unique insert, so one-time use is exact across processes; the reuse watch counts
rows. While the database cannot be reached the store reports itself unavailable and the
lifecycle's ``on_unavailable`` policy decides.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models import Count, Max

from jwkguard import ConfigurationError, EventHandler, log_event
from jwkguard.errors import StoreUnavailable
from jwkguard.fleet import (
    Replica,
    ReplicatedStore,
    WiredLifecycle,
    lifecycle_policy,
    lowered_options,
)
from jwkguard.lifecycle import LifecycleAdmin, LifecycleChange, ReuseWatch, TokenUsage
from jwkguard.settings import positive_seconds

__all__ = [
    "LIFECYCLE_STORE_SETTINGS",
    "DatabaseLifecycle",
    "DatabaseStore",
    "DatabaseStoreSettings",
    "build_database_lifecycle",
    "build_database_store_settings",
    "lifecycle_admin",
]

logger = logging.getLogger("jwkguard.lifecycle")

UnavailablePolicy = Literal["fail_open", "fail_closed"]

# How long a gap in the change ids is watched for a late commit (PostgreSQL hands out ids
# before commit, so a transaction with a lower id can become visible after a higher one).
_GAP_GRACE: Final = 30.0
_SWEEP_INTERVAL: Final = 60.0


def _digest(*parts: str) -> str:
    text = "\x1f".join(f"{len(part)}:{part}" for part in parts)
    return hashlib.sha256(text.encode()).hexdigest()


def _kind(change: LifecycleChange) -> str:
    return {
        "revoke_token": "revoked",
        "cut_off_subject": "subject",
        "cut_off_client": "client",
    }.get(change.op, change.key_field or "")


def _as_change(row: Any) -> LifecycleChange | None:
    try:
        return LifecycleChange.from_mapping(
            {
                "op": row.op,
                "issuer": row.issuer,
                "value": row.value or None,
                "key_field": row.key_field or None,
                "at": row.at,
                "by": row.by,
                "why": row.why,
                "timestamp": row.timestamp,
            }
        )
    except ValueError:
        return None


class DatabaseStore(ReplicatedStore):
    """Lifecycle state shared through Django's database, with a local replica.

    Call :meth:`start` (or :meth:`start_on_first_use`, what the ``LIFECYCLE_STORE`` setting
    does) before serving: it loads the replica and starts the polling thread. A store that is
    never started still writes (for an admin job or a management command).

    Args:
        using: The database alias (``DATABASES`` key).
        poll_interval: Seconds between polls of the change table: the bound on how stale
            another process's view can be (plus one query).
        resync_interval: Seconds between full reloads of the state.
        clock: Unix time for expiring revocations and the ledger; default ``time.time``.
        on_event: Receives ``store_unavailable`` and ``store_recovered``.
    """

    def __init__(
        self,
        *,
        using: str = "default",
        poll_interval: float = 2.0,
        resync_interval: float = 300.0,
        clock: Callable[[], float] | None = None,
        on_event: EventHandler | None = None,
    ) -> None:
        if not isinstance(using, str) or not using:
            raise ConfigurationError("using must be a database alias")
        self._poll_interval = positive_seconds(poll_interval, "poll_interval")
        self._resync_interval = positive_seconds(resync_interval, "resync_interval")
        super().__init__(
            backend="database",
            thread_name="jwkguard-db-store",
            first_load_wait=self._poll_interval,
            clock=clock,
            on_event=on_event,
        )
        self._using = using
        # _lock also guards the last id and the gaps.
        self._last_id = 0
        self._gaps: dict[int, float] = {}  # missing id -> until when to look for it
        self._loaded = False
        self._next_sweep = 0.0

    @property
    def poll_interval(self) -> float:
        """Seconds between polls: the documented staleness bound of other processes."""
        return self._poll_interval

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the polling thread (waits for at most one poll)."""
        self._stop_thread(timeout=self._poll_interval + 5.0)

    # -- the replica: load and poll -------------------------------------------------------

    def resync(self) -> None:
        """Reload the whole state from the database now."""
        from .models import LifecycleEntry, LifecycleRecord

        try:
            with transaction.atomic(using=self._using):
                last = LifecycleRecord.objects.using(self._using).aggregate(n=Max("id"))["n"]
                entries = list(LifecycleEntry.objects.using(self._using).all())
        except DatabaseError as exc:
            raise self._failed(exc) from exc
        replica = Replica()
        now = self._clock()
        for entry in entries:
            change = self._entry_change(entry)
            if change is not None and not (change.op == "revoke_token" and entry.at <= now):
                replica.apply(change)
        with self._lock:
            self._replica.replace(replica)
            self._last_id = max(self._last_id, last or 0)
            self._loaded = True

    @staticmethod
    def _entry_change(entry: Any) -> LifecycleChange | None:
        ops = {"revoked": "revoke_token", "subject": "cut_off_subject", "client": "cut_off_client"}
        try:
            if entry.kind in ops:
                return LifecycleChange.from_mapping(
                    {"op": ops[entry.kind], "issuer": entry.issuer, "value": entry.value,
                     "at": entry.at}
                )  # fmt: skip
            return LifecycleChange.from_mapping(
                {"op": "distrust_key", "issuer": entry.issuer, "value": entry.value,
                 "key_field": entry.kind, "timestamp": entry.at}
            )  # fmt: skip
        except ValueError:
            return None

    def poll(self) -> int:
        """Apply the changes made since the last poll (in ``id`` order); returns how many.

        Raises:
            StoreUnavailable: The database cannot be reached.
        """
        from django.db.models import Q

        from .models import LifecycleRecord

        if not self._loaded:
            self.resync()
        now = time.monotonic()
        with self._lock:
            last = self._last_id
            self._gaps = {gap: until for gap, until in self._gaps.items() if until > now}
            gaps = list(self._gaps)
        query = Q(id__gt=last) | Q(id__in=gaps) if gaps else Q(id__gt=last)
        try:
            rows = list(
                LifecycleRecord.objects.using(self._using).filter(query).order_by("id")[:1000]
            )
        except DatabaseError as exc:
            raise self._failed(exc) from exc
        broadcasts: list[LifecycleChange] = []
        with self._lock:
            for row in rows:
                change = _as_change(row)
                self._gaps.pop(row.id, None)
                if row.id > self._last_id:
                    self._gaps.update(
                        {gap: now + _GAP_GRACE for gap in range(self._last_id + 1, row.id)}
                        if row.id - self._last_id <= 100
                        else {}
                    )
                    self._last_id = row.id
                if change is None:
                    continue
                if change.op == "force_refresh":
                    broadcasts.append(change)
                else:
                    self._replica.apply(change)
        for change in broadcasts:
            self._broadcast(change)
        return len(rows)

    def _run(self) -> None:
        delay = self._poll_interval
        full = time.monotonic() + self._resync_interval
        while not self._stop.is_set():
            try:
                if time.monotonic() >= full:
                    self.resync()
                    full = time.monotonic() + self._resync_interval
                self.poll()
                self._sweep()
                self._mark_up()
                delay = self._poll_interval
            except StoreUnavailable:
                delay = min(delay * 2, max(self._poll_interval, 30.0))
            except Exception as exc:  # a bug here must not leave a stale replica marked "up"
                logger.exception("lifecycle database poller failed")
                self._mark_down(exc)
            finally:
                self._attempted.set()
                # This thread's connection: let Django drop it if it broke or aged out.
                connections[self._using].close_if_unusable_or_obsolete()
            self._stop.wait(delay)
        connection = connections[self._using]
        connection.close()
        if connection.connection is not None:
            # An in-memory SQLite database (Django's test database): Django's close() keeps it
            # open, as the last connection holds the data, but this one dies with the thread
            # (the database lives on in the others) and Python 3.13 warns when it is collected.
            connection.connection.close()
            connection.connection = None

    def _sweep(self) -> None:
        """Delete expired revocations, ledger entries and reuse rows (every minute)."""
        from .models import LifecycleEntry, OneTimeUse, TokenUse

        now = self._clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        try:
            db = self._using
            LifecycleEntry.objects.using(db).filter(kind="revoked", at__lte=now).delete()
            OneTimeUse.objects.using(db).filter(expires__lte=now).delete()
            TokenUse.objects.using(db).filter(at__lte=now - 86400.0).delete()
        except DatabaseError as exc:
            raise self._failed(exc) from exc
        with self._lock:
            self._replica.prune(now)

    # -- writes ---------------------------------------------------------------------------

    def publish(self, change: LifecycleChange) -> None:
        """Store ``change`` (its row and its entry, in one transaction) and apply it here.

        Raises:
            StoreUnavailable: The database cannot be reached.
        """
        from .models import LifecycleEntry, LifecycleRecord

        db = self._using
        try:
            with transaction.atomic(using=db):
                LifecycleRecord.objects.using(db).create(
                    op=change.op,
                    issuer=change.issuer,
                    value=change.value or "",
                    key_field=change.key_field or "",
                    at=change.at,
                    by=change.by,
                    why=change.why,
                    timestamp=change.timestamp,
                )
                if change.op != "force_refresh" and change.value is not None:
                    kind = _kind(change)
                    digest = _digest(change.issuer, kind, change.value)
                    entries = LifecycleEntry.objects.using(db)
                    if change.op == "trust_key":
                        entries.filter(digest=digest).delete()
                    else:
                        at = change.timestamp if kind in ("kid", "thumbprint") else change.at
                        current = entries.select_for_update().filter(digest=digest).first()
                        if kind == "revoked" and current is not None:
                            at = max(at or 0.0, current.at)
                        entries.update_or_create(
                            digest=digest,
                            defaults={
                                "kind": kind,
                                "issuer": change.issuer,
                                "value": change.value,
                                "at": at,
                            },
                        )
        except DatabaseError as exc:
            raise self._failed(exc) from exc
        with self._lock:
            # Re-applied later by this process's poll, in id order with everyone's changes.
            self._replica.apply(change)

    async def apublish(self, change: LifecycleChange) -> None:
        """``publish`` in Django's sync thread."""
        await sync_to_async(self.publish)(change)

    # -- replay ledger and reuse watch ----------------------------------------------------

    def claim_once(self, issuer: str, token_id: str, ttl: float) -> bool | None:
        """A unique insert: True for the first use, False after; None if the DB is down."""
        from .models import OneTimeUse

        now = self._clock()
        digest = _digest(issuer, token_id)
        ledger = OneTimeUse.objects.using(self._using)
        try:
            try:
                with transaction.atomic(using=self._using):
                    ledger.create(digest=digest, expires=now + ttl)
                return True
            except IntegrityError:
                pass
            # Taken: free it only if that use has expired, then claim it again (still unique).
            with transaction.atomic(using=self._using):
                if not ledger.filter(digest=digest, expires__lte=now).delete()[0]:
                    return False
            try:
                with transaction.atomic(using=self._using):
                    ledger.create(digest=digest, expires=now + ttl)
                return True
            except IntegrityError:
                return False
        except DatabaseError as exc:
            self._failed(exc)
            return None

    async def aclaim_once(self, issuer: str, token_id: str, ttl: float) -> bool | None:
        """``claim_once`` in Django's sync thread."""
        return await sync_to_async(self.claim_once)(issuer, token_id, ttl)

    def record_use(
        self, issuer: str, token_id: str, address: str, window: float
    ) -> TokenUsage | None:
        """Count a use from ``address`` within the last ``window`` seconds; None if down."""
        from .models import TokenUse

        now = self._clock()
        digest = _digest(issuer, token_id)
        uses = TokenUse.objects.using(self._using)
        try:
            with transaction.atomic(using=self._using):
                uses.create(digest=digest, address=address[:255], at=now)
                recent = uses.filter(digest=digest, at__gt=now - window)
                counts = recent.aggregate(
                    uses=Count("id"), addresses=Count("address", distinct=True)
                )
                mine = recent.filter(address=address[:255]).count()
        except DatabaseError as exc:
            self._failed(exc)
            return None
        return TokenUsage(
            uses=int(counts["uses"]), addresses=int(counts["addresses"]), new_address=mine == 1
        )

    async def arecord_use(
        self, issuer: str, token_id: str, address: str, window: float
    ) -> TokenUsage | None:
        """``record_use`` in Django's sync thread."""
        return await sync_to_async(self.record_use)(issuer, token_id, address, window)


# -- settings ------------------------------------------------------------------------------

LIFECYCLE_STORE_SETTINGS = frozenset(
    {"store", "database", "poll_interval", "resync_interval", "on_unavailable", "reuse"}
)
"""Lower-case keys of a ``LIFECYCLE_STORE`` mapping."""


@dataclass(frozen=True, slots=True)
class DatabaseStoreSettings:
    """``JWKGUARD["LIFECYCLE_STORE"]``, checked."""

    using: str = "default"
    poll_interval: float = 2.0
    resync_interval: float = 300.0
    on_unavailable: UnavailablePolicy = "fail_open"
    reuse: ReuseWatch | None = field(default_factory=ReuseWatch)

    def _store(self, on_event: EventHandler) -> DatabaseStore:
        """The store these settings describe (not started), its events to ``on_event``."""
        return DatabaseStore(
            using=self.using,
            poll_interval=self.poll_interval,
            resync_interval=self.resync_interval,
            on_event=on_event,
        )


def build_database_store_settings(
    value: Any, *, where: str = "LIFECYCLE_STORE"
) -> DatabaseStoreSettings | None:
    """Settings from ``"database"`` or ``{"STORE": "database", ...}``; None when unset.

    Raises:
        ConfigurationError: Unknown keys ("did you mean"), or bad values, naming ``where``.
    """
    if value is None or value is False:
        return None
    if value == "database":
        value = {"store": "database"}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where} must be 'database' or a mapping with STORE")
    options = lowered_options(value, where, LIFECYCLE_STORE_SETTINGS)
    if options.get("store") != "database":
        raise ConfigurationError(f"{where}.STORE must be 'database' (Redis: use FLEET)")
    using = options.get("database", "default")
    if not isinstance(using, str) or not using:
        raise ConfigurationError(f"{where}.DATABASE must be a DATABASES alias")
    policy, reuse = lifecycle_policy(options, where)
    defaults = {"poll_interval": 2.0, "resync_interval": 300.0}
    intervals = {
        key: positive_seconds(options.get(key, default), f"{where}.{key.upper()}")
        for key, default in defaults.items()
    }
    return DatabaseStoreSettings(
        using=using,
        on_unavailable=policy,
        reuse=reuse,
        poll_interval=intervals["poll_interval"],
        resync_interval=intervals["resync_interval"],
    )


class DatabaseLifecycle(WiredLifecycle[DatabaseStore]):
    """A :class:`DatabaseStore` and its :class:`~jwkguard.lifecycle.Lifecycle`, built from settings.

    The store starts polling in each process the first time it is consulted.
    """

    def __init__(self, settings: DatabaseStoreSettings) -> None:
        self.settings = settings
        super().__init__(
            settings._store, on_unavailable=settings.on_unavailable, reuse=settings.reuse
        )


def build_database_lifecycle(value: Any) -> DatabaseLifecycle | None:
    """A :class:`DatabaseLifecycle` from ``LIFECYCLE_STORE``, or None when unset."""
    settings = build_database_store_settings(value)
    return None if settings is None else DatabaseLifecycle(settings)


def lifecycle_admin() -> LifecycleAdmin:
    """A :class:`~jwkguard.lifecycle.LifecycleAdmin` writing to the database store, audited.

    With ``LIFECYCLE_STORE`` set it uses that store (so this process enforces a change at
    once) and the validator's event handler (so the audit trail records it); otherwise a
    write-only store on the default database and the ``jwkguard.events`` logger.
    """
    from . import conf

    try:
        state = conf.get_state()
    except ImproperlyConfigured:
        state = None
    if state is not None and state.database is not None:
        return LifecycleAdmin(state.database.store, on_event=state.validator.on_event)
    on_event = state.validator.on_event if state is not None else log_event
    return LifecycleAdmin(DatabaseStore(), on_event=on_event)
