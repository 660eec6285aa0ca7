"""Chaos run: steady load through real `jwkguard serve` processes while Redis and the issuer fail.

Two servers (one ``fail_open``, one ``fail_closed``) share a real redis-server and fetch their
keys from a real ``LocalIssuer`` with a 2 s cache lifetime, so refreshes keep happening. While
a gateway-like client asks both at a steady rate, a schedule kills and restarts redis-server
(empty: no persistence), pauses it (a hung Redis), and makes the issuer answer 503 and hang.
Every answer is checked against the documented policy (docs/lifecycle.md,
docs/key-lifecycle.md): valid tokens pass while the keys are within ``max_stale`` (fail-closed
answers 503 ``store_unavailable`` only while Redis is out), revoked tokens are never accepted,
a revocation made once Redis is back is enforced within ``ENFORCE_BOUND``, no request waits
for a failing dependency, and nothing answers 500.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from jwkguard.errors import StoreUnavailable
from jwkguard.fleet import RedisStore
from jwkguard.lifecycle import LifecycleAdmin
from jwkguard.testing import LocalIssuer

from ..conftest import require_binary
from ..servers import RedisServer, free_port, stop_process, wait_until_listening

pytestmark = pytest.mark.slow

JWKGUARD = str(Path(sys.executable).with_name("jwkguard"))
POLICIES = ("fail_open", "fail_closed")
WORKERS = 6  # concurrent gateway connections per server
PACE = 0.02  # seconds between one worker's requests: about 300 requests/s per server
CLIENT_TIMEOUT = 5.0  # a request still unanswered after this counts as hung
# No request may wait for a failing dependency: this is below Redis's socket timeout (0.5 s)
# and the issuer's fetch timeout (1 s), so a request that waited on either would show.
LATENCY_BOUND = 0.5
# A revocation written once Redis is back is enforced everywhere within the listener's
# reconnect backoff (<= 1 s) plus one heartbeat (1 s); docs/lifecycle.md, consistency window.
ENFORCE_BOUND = 2.0
# fail_closed may refuse with 503 from the start of a Redis disruption until the listener has
# reconnected and reloaded after it: the same bound.
RECOVERY_BOUND = ENFORCE_BOUND
# Once the store has seen a killed Redis (its pub/sub socket closes at once), fail_closed must
# refuse every token (the documented policy); this is the slack for noticing.
NOTICE_SLACK = 0.5
MAX_STALE = 120  # longer than the run: the last good keys stay usable throughout


@dataclass(frozen=True, slots=True)
class Answer:
    server: str
    token: str  # "valid", or the name of a token that gets revoked
    start: float
    end: float
    status: int  # 0: no answer (transport error or timeout)
    reason: str

    @property
    def latency(self) -> float:
        return self.end - self.start


@dataclass
class Timeline:
    """What the chaos schedule did, and when (time.monotonic())."""

    marks: list[tuple[float, str]]
    redis_down: list[tuple[float, float]]  # killed .. restarted (answering PING)
    redis_hung: list[tuple[float, float]]  # paused .. resumed
    revoked: dict[str, tuple[float, float]]  # token -> admin call began .. returned
    refused_while_down: int = 0  # admin revocations refused with StoreUnavailable
    jwks_fetches_while_faulty: int = 0

    def mark(self, what: str) -> float:
        now = time.monotonic()
        self.marks.append((now, what))
        return now


def serve_config(port: int, issuer: LocalIssuer, redis_url: str, prefix: str, policy: str) -> str:
    return f"""
[server]
gateway = "nginx"
host = "127.0.0.1"
port = {port}
log_level = "warning"

[validator]
algorithms = ["RS256"]

[[validator.issuers]]
issuer = {json.dumps(issuer.url)}
audiences = [{json.dumps(issuer.audience)}]
jwks_uri = {json.dumps(issuer.jwks_uri)}
default_ttl = 2
min_ttl = 1
timeout = 1
cooldown = 1
max_stale = {MAX_STALE}

[[routes]]
path = "/orders"
scopes = ["orders:read"]

[lifecycle]
redis_url = {json.dumps(redis_url)}
prefix = {json.dumps(prefix)}
on_unavailable = "{policy}"
"""


@contextmanager
def serve(config: str, tmp_path: Path, name: str, port: int) -> Iterator[subprocess.Popen[str]]:
    """`jwkguard serve` as a child process until the block ends (its log in a file)."""
    path = tmp_path / f"{name}.toml"
    path.write_text(config, encoding="utf-8")
    log_path = tmp_path / f"{name}.log"
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [JWKGUARD, "serve", "--config", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ),
        )
        try:
            try:
                wait_until_listening(port, process, timeout=30)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{log_path.read_text(encoding='utf-8')}") from None
            yield process
        finally:
            stop_process(process)


def asking(token: str) -> dict[str, str]:
    """nginx's auth_request subrequest for ``GET https://api.example.com/orders/42``."""
    return {
        "X-Original-Method": "GET",
        "X-Original-URI": "/orders/42",
        "X-Forwarded-Host": "api.example.com",
        "Authorization": f"Bearer {token}",
    }


def reason_of(response: httpx.Response) -> str:
    if response.status_code == 200:
        return "allowed"
    carried = response.headers.get("X-Auth-Error-Body")
    try:
        body = json.loads(carried) if carried else response.json()
        return str(body.get("reason") or body.get("error") or "?")
    except ValueError:
        return "unreadable"


async def ask(
    client: httpx.AsyncClient, server: str, port: int, name: str, token: str
) -> tuple[Answer, httpx.Response | None]:
    start = time.monotonic()
    try:
        response = await client.get(f"http://127.0.0.1:{port}/auth", headers=asking(token))
    except httpx.HTTPError as exc:
        return Answer(server, name, start, time.monotonic(), 0, type(exc).__name__), None
    end = time.monotonic()
    return Answer(server, name, start, end, response.status_code, reason_of(response)), response


async def drive(
    ports: dict[str, int], tokens: list[tuple[str, str]], stop: threading.Event
) -> list[Answer]:
    """Steady load on every server until ``stop``; each answer recorded."""
    answers: list[Answer] = []
    missing_retry_after: list[Answer] = []
    limits = httpx.Limits(max_connections=len(ports) * WORKERS)
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT, limits=limits) as client:

        async def worker(server: str, port: int, offset: int) -> None:
            index = offset
            next_at = time.monotonic()
            while not stop.is_set():
                name, token = tokens[index % len(tokens)]
                index += 1
                answer, response = await ask(client, server, port, name, token)
                answers.append(answer)
                retry_after = "" if response is None else response.headers.get("Retry-After", "")
                if answer.status == 503 and not retry_after.isdigit():
                    missing_retry_after.append(answer)
                next_at = max(next_at + PACE, time.monotonic())
                await asyncio.sleep(next_at - time.monotonic())

        await asyncio.gather(
            *(
                worker(server, port, offset)
                for server, port in ports.items()
                for offset in range(WORKERS)
            )
        )
    assert not missing_retry_after, f"503 without Retry-After: {missing_retry_after[:3]}"
    return answers


def revoke_until_done(
    admin: LifecycleAdmin, timeline: Timeline, name: str, jti: str, exp: int, issuer: str
) -> None:
    """Revoke, retrying while Redis cannot take the write (the documented way: retry)."""
    deadline = time.monotonic() + 10
    while True:
        began = time.monotonic()
        try:
            admin.revoke_token(jti, issuer=issuer, expires_at=exp, by="chaos", why=f"test {name}")
        except StoreUnavailable:
            timeline.refused_while_down += 1
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        timeline.revoked[name] = (began, time.monotonic())
        timeline.mark(f"{name} revoked")
        return


def run_schedule(
    t0: float,
    steps: list[tuple[float, Callable[[], None]]],
    stop: threading.Event,
    failures: list[BaseException],
) -> None:
    try:
        for at, action in steps:
            if stop.wait(max(0.0, t0 + at - time.monotonic())):
                return  # the load ended early: do nothing more
            action()
    except BaseException as exc:  # reported by the test after the load stops
        failures.append(exc)
    finally:
        stop.set()


def overlaps(answer: Answer, windows: list[tuple[float, float]], slack_after: float) -> bool:
    """True if the request was in flight during a window (or ``slack_after`` past its end)."""
    return any(begin <= answer.end and answer.start <= end + slack_after for begin, end in windows)


def test_chaos_under_steady_load_every_decision_follows_the_policy(tmp_path: Path) -> None:
    """Redis killed, restarted empty and hung, the issuer failing and hanging, under load."""
    redis_server = RedisServer(require_binary("redis-server"), tmp_path)
    prefix = f"chaos-{uuid.uuid4().hex[:8]}:"
    with ExitStack() as stack:
        redis_server.start()
        stack.callback(redis_server.stop)
        issuer = stack.enter_context(LocalIssuer(cache_control="max-age=2"))
        admin_store = RedisStore(redis_server.url, prefix=prefix)
        stack.callback(admin_store.close)
        admin = LifecycleAdmin(admin_store)

        def mint(subject: str) -> tuple[str, str, int]:
            jti = uuid.uuid4().hex
            exp = int(time.time()) + 900
            token = issuer.mint(subject=subject, scopes="orders:read", jti=jti, lifetime=900)
            return token, jti, exp

        valid = [mint(f"user-{n}")[0] for n in range(4)]
        doomed = {name: mint(name) for name in ("before", "after_outage", "between")}
        # Revoked before anything starts: refused from the servers' first replica on.
        before_token, before_jti, before_exp = doomed["before"]
        admin.revoke_token(
            before_jti, issuer=issuer.url, expires_at=before_exp, by="chaos", why="setup"
        )

        ports = {policy: free_port() for policy in POLICIES}
        for policy, port in ports.items():
            config = serve_config(port, issuer, redis_server.url, prefix, policy)
            stack.enter_context(serve(config, tmp_path, policy, port))
        # Each server is ready: a valid token passes and the early revocation is enforced.
        with httpx.Client(timeout=5) as probe:
            for port in ports.values():
                deadline = time.monotonic() + 10
                while True:
                    asked = {}
                    for token in (valid[0], before_token):
                        response = probe.get(f"http://127.0.0.1:{port}/auth", headers=asking(token))
                        asked[token] = (response.status_code, reason_of(response))
                    if asked == {valid[0]: (200, "allowed"), before_token: (401, "revoked")}:
                        break
                    assert time.monotonic() < deadline, f"server on {port} not ready: {asked}"
                    time.sleep(0.1)

        tokens = [("valid", token) for token in valid] + [
            (name, token) for name, (token, _, _) in doomed.items()
        ]
        timeline = Timeline(marks=[], redis_down=[], redis_hung=[], revoked={})
        jwks_path = "/jwks.json"
        state: dict[str, float] = {}

        def issuer_fails() -> None:
            timeline.mark("issuer answers 503")
            state["jwks_before"] = issuer.requests[jwks_path]
            issuer.fail_with(503)

        def issuer_hangs() -> None:
            timeline.mark("issuer hangs")
            issuer.hang()

        def issuer_heals() -> None:
            issuer.heal()
            timeline.mark("issuer ok")
            timeline.jwks_fetches_while_faulty += issuer.requests[jwks_path] - int(
                state.pop("jwks_before")
            )

        def redis_killed() -> None:
            state["down"] = timeline.mark("redis killed")
            redis_server.kill()

        def redis_restarted() -> None:
            redis_server.start()
            timeline.redis_down.append((state.pop("down"), timeline.mark("redis restarted empty")))

        def redis_paused() -> None:
            state["hung"] = timeline.mark("redis paused")
            redis_server.pause()

        def redis_resumed() -> None:
            redis_server.resume()
            timeline.redis_hung.append((state.pop("hung"), timeline.mark("redis resumed")))

        def revoke(name: str) -> Callable[[], None]:
            _, jti, exp = doomed[name]
            return lambda: revoke_until_done(admin, timeline, name, jti, exp, issuer.url)

        def revoke_refused_while_down() -> None:
            _, jti, exp = doomed["after_outage"]
            with pytest.raises(StoreUnavailable):
                admin.revoke_token(jti, issuer=issuer.url, expires_at=exp, by="chaos", why="down")
            timeline.refused_while_down += 1

        steps: list[tuple[float, Callable[[], None]]] = [
            (2.0, issuer_fails),
            (4.0, redis_killed),
            (5.5, revoke_refused_while_down),
            (7.0, issuer_hangs),
            (9.0, redis_restarted),
            (9.0, revoke("after_outage")),  # retried until Redis takes it
            (12.0, issuer_heals),
            (14.0, redis_paused),
            (17.0, redis_resumed),
            (19.0, revoke("between")),
            (21.0, issuer_fails),
            (21.0, redis_killed),
            (24.0, redis_restarted),
            (27.0, issuer_heals),
            (30.0, lambda: None),
        ]
        stop = threading.Event()
        failures: list[BaseException] = []
        chaos = threading.Thread(
            target=run_schedule, args=(time.monotonic(), steps, stop, failures), daemon=True
        )
        chaos.start()
        try:
            answers = asyncio.run(drive(ports, tokens, stop))
        finally:
            stop.set()  # the schedule stops too, before the teardown stops every process
            chaos.join(timeout=30)
        assert not chaos.is_alive()
        if failures:
            raise failures[0]

        # Redis, restarted empty twice, holds every revocation again: the replicas restored them.
        with redis.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=2) as direct:
            members = direct.zrange(f"{prefix}{{lifecycle}}:revoked", 0, -1)
        stored = {json.loads(member)[1] for member in members}
        assert stored == {jti for _, jti, _ in doomed.values()}

    totals = {server: Totals.of(answers, server) for server in POLICIES}
    report = describe(timeline, totals, answers)
    print(report)
    wrong = judge(answers, timeline)
    t0 = min(answer.start for answer in answers)
    examples = [
        f"{what}: {a.server} {a.token} {a.start - t0:.3f}-{a.end - t0:.3f} s {a.status} {a.reason}"
        for what, a in wrong[:10]
    ]
    assert not wrong, f"{len(wrong)} wrong decisions, e.g.\n" + "\n".join([*examples, report])
    # The totals, and that the run exercised what it claims to.
    for total in totals.values():
        assert total.requests > 2000, report
        assert total.allowed > 1000, report
        assert total.status_500 == 0, report
        assert total.unanswered == 0, report
        assert total.max_latency < LATENCY_BOUND, report
    assert set(totals["fail_open"].refused) == {"revoked"}, report
    assert totals["fail_open"].server_errors == 0, report
    assert set(totals["fail_closed"].refused) == {"revoked", "store_unavailable"}, report
    assert (
        totals["fail_closed"].server_errors == totals["fail_closed"].refused["store_unavailable"]
    ), report
    assert set(timeline.revoked) == {"after_outage", "between"}, report
    for name in timeline.revoked:
        for server in POLICIES:
            assert any(
                a.server == server and a.token == name and a.reason == "revoked" for a in answers
            ), report
    assert timeline.refused_while_down >= 1, report
    assert timeline.jwks_fetches_while_faulty >= 2, report


@dataclass(frozen=True)
class Totals:
    requests: int
    allowed: int
    refused: dict[str, int]  # reason -> count
    server_errors: int  # 5xx
    status_500: int
    unanswered: int
    max_latency: float
    p99_latency: float

    @classmethod
    def of(cls, answers: list[Answer], server: str) -> Totals:
        mine = [answer for answer in answers if answer.server == server]
        latencies = sorted(answer.latency for answer in mine) or [0.0]
        refused = Counter(a.reason for a in mine if a.status not in (0, 200))
        return cls(
            requests=len(mine),
            allowed=sum(answer.status == 200 for answer in mine),
            refused=dict(sorted(refused.items())),
            server_errors=sum(answer.status >= 500 for answer in mine),
            status_500=sum(answer.status == 500 for answer in mine),
            unanswered=sum(answer.status == 0 for answer in mine),
            max_latency=latencies[-1],
            p99_latency=latencies[int(len(latencies) * 0.99)],
        )


def describe(timeline: Timeline, totals: dict[str, Totals], answers: list[Answer]) -> str:
    """The schedule as it ran and the totals per server, for the log and failure messages."""
    t0 = min((answer.start for answer in answers), default=0.0)
    lines = ["chaos run:"]
    lines += [f"  {at - t0:6.2f} s  {what}" for at, what in timeline.marks]
    for server, total in totals.items():
        lines.append(
            f"  {server}: {total.requests} requests, {total.allowed} allowed, "
            f"refused {total.refused}, 5xx {total.server_errors} (500: {total.status_500}), "
            f"unanswered {total.unanswered}, max latency {total.max_latency * 1000:.1f} ms, "
            f"p99 {total.p99_latency * 1000:.1f} ms"
        )
        for name, (_, done) in sorted(timeline.revoked.items()):
            late = [
                a.start - done
                for a in answers
                if a.server == server and a.token == name and a.status == 200 and a.start > done
            ]
            lines.append(
                f"    {name}: last acceptance {max(late, default=0.0) * 1000:.0f} ms "
                "after the revocation was written"
            )
    lines.append(
        f"  admin writes refused while Redis was down: {timeline.refused_while_down}; "
        f"JWKS fetches while the issuer failed: {timeline.jwks_fetches_while_faulty}"
    )
    return "\n".join(lines)


def judge(answers: list[Answer], timeline: Timeline) -> list[tuple[str, Answer]]:
    """Every answer that breaks the policy, with what is wrong with it."""
    wrong: list[tuple[str, Answer]] = []
    disrupted = timeline.redis_down + timeline.redis_hung
    for answer in answers:
        fail_closed = answer.server == "fail_closed"
        # fail_closed may answer 503 while Redis is out (documented); never otherwise.
        may_be_unavailable = fail_closed and overlaps(answer, disrupted, RECOVERY_BOUND)
        if answer.status == 0:
            wrong.append(("no answer", answer))
        elif answer.status >= 500 and not (
            answer.status == 503 and answer.reason == "store_unavailable" and may_be_unavailable
        ):
            wrong.append(("server error", answer))
        if answer.latency > LATENCY_BOUND:
            wrong.append(("too slow", answer))
        # fail_closed refuses every token once it has seen Redis die (docs/lifecycle.md).
        if fail_closed and answer.status == 200:
            for begin, end in timeline.redis_down:
                if begin + NOTICE_SLACK <= answer.start and answer.end <= end:
                    wrong.append(("fail_closed accepted during the outage", answer))
        if answer.token == "valid":
            revoked = False
        elif answer.token == "before":
            revoked = True
        else:
            began, done = timeline.revoked[answer.token]
            if began <= answer.end and answer.start <= done + ENFORCE_BOUND:
                continue  # the change is on its way: either answer is right
            revoked = answer.start > done
        if revoked:
            if answer.status == 200:
                wrong.append(("revoked token accepted", answer))
            elif answer.status == 401 and answer.reason != "revoked":
                wrong.append(("refused for another reason", answer))
        elif answer.status != 200 and not (answer.status == 503 and may_be_unavailable):
            wrong.append(("valid token refused", answer))
    return wrong
