"""``JWKGUARD["LIFECYCLE_STORE"]``: lifecycle state in Django's database.

In-process tests run on the suite's SQLite test database and, where marked with the ``db``
fixture, on a real PostgreSQL started for this module (tests/servers.py ``PostgresServer``,
database alias ``pg``). The two-process test runs two Django processes on one SQLite file, then
on one PostgreSQL database, and measures how soon a revocation made by ``manage.py jwkguard``
in one is enforced by the other.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.db import connections
from django.test import override_settings

from jwkguard.errors import LifecycleError, StoreUnavailable
from jwkguard.lifecycle import LifecycleAdmin
from jwkguard.testing import LocalIssuer
from jwkguard_django import conf
from jwkguard_django.lifecycle import DatabaseLifecycle, DatabaseStore

from ..conftest import require_binary
from ..servers import PostgresServer
from . import _db_worker
from .conftest import jwkguard_settings

ROOT = Path(__file__).resolve().parents[2]
STORE = {"STORE": "database", "POLL_INTERVAL": 0.2}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for this module (Debian keeps its binaries off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    initdb = Path(found[-1] if found else require_binary("initdb"))
    with PostgresServer(initdb.parent) as server:
        yield server


def _version(path: str) -> tuple[int, ...]:
    return tuple(int(p) for p in Path(path).parts[-3].split(".") if p.isdigit())


@pytest.fixture(scope="module")
def pg_alias(postgres: PostgresServer) -> Iterator[str]:
    """The ``pg`` database alias on ``postgres``, migrated; removed again afterwards."""
    default = dict(connections.settings["default"])
    configured = connections.configure_settings(
        {"default": default, "pg": postgres.django_database()}
    )
    connections.settings["pg"] = configured["pg"]
    try:
        call_command("migrate", database="pg", verbosity=0, interactive=False)
        yield "pg"
    finally:
        connections["pg"].close()
        del connections["pg"]
        del connections.settings["pg"]


@pytest.fixture(params=["default", "pg"], ids=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> str:
    """The database alias a store test runs on: the SQLite test database, then PostgreSQL."""
    return str(request.getfixturevalue("pg_alias") if request.param == "pg" else "default")


@pytest.fixture(autouse=True)
def empty_tables() -> Iterator[None]:
    from jwkguard_django.models import LifecycleEntry, LifecycleRecord, OneTimeUse, TokenUse

    yield
    for alias in ("default", "pg"):
        if alias in connections.settings:
            for model in (LifecycleRecord, LifecycleEntry, OneTimeUse, TokenUse):
                model.objects.using(alias).all().delete()


def errors(settings: dict[str, Any]) -> dict[str, str]:
    with override_settings(JWKGUARD=settings):
        return {m.id or "": m.msg for m in run_checks() if m.id and m.id.startswith("jwkguard.")}


def test_lifecycle_store_is_a_checked_setting_refused_with_fleet_or_lifecycle(
    issuer: LocalIssuer,
) -> None:
    assert errors(jwkguard_settings(issuer, LIFECYCLE_STORE="database")) == {}
    assert errors(jwkguard_settings(issuer, LIFECYCLE_STORE=STORE)) == {}
    typo = errors(jwkguard_settings(issuer, LIFECYCLE_STORE={**STORE, "POLL_INTERVALL": 1}))
    assert "did you mean POLL_INTERVAL" in typo["jwkguard.E008"]
    fleet = {"REDIS_URL": "redis://127.0.0.1:1/0"}
    both = errors(jwkguard_settings(issuer, LIFECYCLE_STORE=STORE, FLEET=fleet))
    assert "not both" in both["jwkguard.E008"]
    own = errors(
        jwkguard_settings(issuer, LIFECYCLE_STORE=STORE, LIFECYCLE="jwkguard.lifecycle.Lifecycle")
    )
    assert "not both" in own["jwkguard.E008"]
    assert "STORE" in errors(jwkguard_settings(issuer, LIFECYCLE_STORE="redis"))["jwkguard.E008"]
    bad = errors(jwkguard_settings(issuer, LIFECYCLE_STORE={**STORE, "POLL_INTERVAL": 0}))
    assert "POLL_INTERVAL" in bad["jwkguard.E008"]
    misspelt = errors(jwkguard_settings(issuer, LIFECYCLE_STOR="database"))
    assert "did you mean LIFECYCLE_STORE" in misspelt["jwkguard.E007"]


def test_the_state_wires_a_lazily_started_database_lifecycle(issuer: LocalIssuer) -> None:
    with override_settings(JWKGUARD=jwkguard_settings(issuer, LIFECYCLE_STORE=STORE)):
        state = conf.get_state()
        assert isinstance(state.database, DatabaseLifecycle)
        assert state.database.store._thread is None  # nothing started until first used
        assert state.validator.lifecycle is state.database.lifecycle
        assert state.database.store.poll_interval == 0.2


def _passes(validator: Any, token: str) -> bool:
    try:
        validator.validate(token)
    except LifecycleError:
        return False
    return True


def test_a_change_is_enforced_by_its_writer_at_once_and_by_another_store_after_a_poll(
    issuer: LocalIssuer, db: str
) -> None:
    from jwkguard_django.models import LifecycleEntry, LifecycleRecord

    store = {**STORE, "DATABASE": db}
    with override_settings(JWKGUARD=jwkguard_settings(issuer, LIFECYCLE_STORE=store)):
        validator = conf.get_validator()
        jti = uuid.uuid4().hex
        token = issuer.mint(jti=jti, sub="alice")
        validator.validate(token)  # starts the store (first use) and passes
        other = DatabaseStore(using=db)
        other.resync()
        admin = LifecycleAdmin(other)
        admin.revoke_token(jti, issuer=issuer.url, expires_at=time.time() + 300, by="t", why="t")
        claims = validator.validate(issuer.mint(sub="bob"))
        assert other.replica.verdict(claims, time.time()) is None
        deadline = time.monotonic() + 3.0
        while validator.lifecycle.store.replica.verdict(  # type: ignore[union-attr]
            validator.validate(issuer.mint(sub="bob")), time.time()
        ) is None and _passes(validator, token):
            assert time.monotonic() < deadline, "the revocation was not seen within 3 s"
            time.sleep(0.02)
        with pytest.raises(LifecycleError) as refused:
            validator.validate(token)
        assert refused.value.reason == "revoked"
        # Trust is lifted the same way, and the history keeps who and why.
        admin.distrust_key(issuer=issuer.url, kid=claims.key_id or "", by="sec", why="incident")
        assert other.replica.verdict(claims, time.time()) == "key_distrusted"
        admin.trust_key(issuer=issuer.url, kid=claims.key_id or "", by="sec", why="false alarm")
        assert other.replica.verdict(claims, time.time()) is None
        assert [r.op for r in LifecycleRecord.objects.using(db).order_by("id")] == [
            "revoke_token",
            "distrust_key",
            "trust_key",
        ]
        assert list(LifecycleEntry.objects.using(db).values_list("kind", flat=True)) == ["revoked"]
        fresh = DatabaseStore(using=db)
        fresh.resync()
        assert fresh.replica.counts()["revoked"] == 1
        assert fresh.replica.counts()["distrusted"] == 0


def test_replaying_the_log_in_id_order_converges_whatever_each_process_applied_first(
    issuer: LocalIssuer, db: str
) -> None:
    one, two = DatabaseStore(using=db), DatabaseStore(using=db)
    one.resync()
    two.resync()
    LifecycleAdmin(one).distrust_key(issuer=issuer.url, kid="k1", by="a", why="a")
    LifecycleAdmin(two).trust_key(issuer=issuer.url, kid="k1", by="b", why="b")
    for store in (one, two):
        store.poll()
        assert store.replica.counts()["distrusted"] == 0


def test_claim_once_is_a_unique_insert_shared_by_every_store(db: str) -> None:
    one, two = DatabaseStore(using=db), DatabaseStore(using=db, clock=lambda: time.time() + 120)
    assert one.claim_once("iss", "t1", ttl=60) is True
    assert one.claim_once("iss", "t1", ttl=60) is False
    assert two.claim_once("iss", "t2", ttl=60) is True
    assert one.claim_once("iss", "t2", ttl=60) is False
    assert two.claim_once("other", "t1", ttl=60) is True  # per issuer
    assert two.claim_once("iss", "t1", ttl=60) is True  # after the first use expired


def test_record_use_counts_uses_and_addresses_across_stores(db: str) -> None:
    one, two = DatabaseStore(using=db), DatabaseStore(using=db)
    first = one.record_use("iss", "t", "10.0.0.1", window=60)
    assert (first.uses, first.addresses, first.new_address) == (1, 1, True)  # type: ignore[union-attr]
    again = two.record_use("iss", "t", "10.0.0.1", window=60)
    assert (again.uses, again.addresses, again.new_address) == (2, 1, False)  # type: ignore[union-attr]
    other = two.record_use("iss", "t", "10.0.0.2", window=60)
    assert (other.uses, other.addresses, other.new_address) == (3, 2, True)  # type: ignore[union-attr]


def test_an_unreachable_database_makes_the_store_unavailable(tmp_path: Path) -> None:
    missing = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "no" / "db")}
    configured = connections.configure_settings({"default": missing, "gone": missing})
    connections.settings["gone"] = configured["gone"]
    events: list[Any] = []
    store = DatabaseStore(using="gone", poll_interval=0.05, on_event=events.append)
    try:
        with pytest.raises(StoreUnavailable):
            store.poll()
        assert store.claim_once("iss", "t", ttl=5) is None
        assert store.record_use("iss", "t", "a", window=5) is None
        assert store.available is False
        assert store.outages == 1
        assert [e.kind for e in events] == ["store_unavailable"]
    finally:
        connections["gone"].close()
        del connections["gone"]
        del connections.settings["gone"]


def test_the_management_command_writes_audited_changes(issuer: LocalIssuer) -> None:
    from jwkguard_django.models import LifecycleRecord

    with override_settings(JWKGUARD=jwkguard_settings(issuer, LIFECYCLE_STORE=STORE)):
        call_command(
            "jwkguard", "revoke", "j1", "--issuer", issuer.url, "--expires-at",
            str(time.time() + 60), "--why", "leaked", "--by", "ops",
        )  # fmt: skip
        call_command("jwkguard", "cut-off", "alice", "--issuer", issuer.url, "--why", "left")
        call_command(
            "jwkguard", "cut-off", "svc", "--client", "--issuer", issuer.url, "--why", "leak"
        )
        call_command("jwkguard", "distrust", "--thumbprint", "abc", "--issuer", issuer.url,
                     "--why", "hsm")  # fmt: skip
        rows = list(LifecycleRecord.objects.order_by("id").values_list("op", "value", "by"))
        assert rows[0] == ("revoke_token", "j1", "ops")
        assert [row[0] for row in rows[1:]] == ["cut_off_subject", "cut_off_client", "distrust_key"]
        assert rows[1][2].startswith("manage.py:")
        replica = conf.get_state().database.store.replica  # type: ignore[union-attr]
        assert replica.counts() == {
            "revoked": 1,
            "subject_cutoffs": 1,
            "client_cutoffs": 1,
            "distrusted": 1,
        }


# -- two processes on one database: a SQLite file, then PostgreSQL -------------------------


class Worker:
    def __init__(self, db: str, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.django._db_worker", db, *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def ask(self, token: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(token + "\n")
        self.process.stdin.flush()
        return self.line()

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_revocation_made_in_one_process_is_enforced_by_another_within_the_poll_interval(
    issuer: LocalIssuer, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    db = str(tmp_path / "lifecycle.sqlite3")
    if backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        name = f"two_{uuid.uuid4().hex[:12]}"
        server.create_database(name)
        db = server.url(name)
    spec = {"url": issuer.url, "audience": issuer.audience, "jwks": issuer.jwks()}
    env = {**os.environ, "JWKGUARD_TEST_ISSUER": json.dumps(spec)}

    def run(*args: str) -> None:
        command = [sys.executable, "-m", "tests.django._db_worker", db, *args]
        subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=60)

    run("migrate")
    jti = uuid.uuid4().hex
    token = issuer.mint(jti=jti, sub="alice")
    worker, admin = Worker(db, env, "serve"), Worker(db, env, "admin")
    try:
        assert worker.line() == "ready"
        assert admin.line() == "ready"
        assert worker.ask(token) == "ok"
        expires = time.time() + 300
        done = admin.ask(f"revoke {jti} --issuer {issuer.url} --expires-at {expires} --why t")
        committed = float(done.split()[1])
        while (answer := worker.ask(token)) == "ok":
            assert time.time() - committed < 5.0, "not enforced within 5 s"
            time.sleep(0.005)
        seen = time.time() - committed
        assert answer == "revoked"
        # The documented bound: one poll interval plus the poll itself.
        assert seen <= _db_worker.POLL_INTERVAL + 0.5, seen
        admin.ask(f"cut-off bob --issuer {issuer.url} --why offboarded")
        bob = issuer.mint(sub="bob", iat=int(time.time()) - 5)
        deadline = time.monotonic() + 5.0
        while (answer := worker.ask(bob)) == "ok":
            assert time.monotonic() < deadline, "not enforced within 5 s"
            time.sleep(0.005)
        assert answer == "subject_cut_off"
        print(f"{backend}: revocation enforced by the other process {seen:.3f} s after its commit")
    finally:
        worker.stop()
        admin.stop()
