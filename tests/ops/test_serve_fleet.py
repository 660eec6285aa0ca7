"""``jwkguard serve`` instances sharing one Redis are one fleet: the ``[lifecycle]`` table builds
the same :class:`~jwkguard.fleet.Fleet` the Flask and Django adapters build, so revocations, the
DPoP replay ledger and the store's options are shared and read the same way everywhere."""

from __future__ import annotations

import re
import time
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from jwkguard import ConfigurationError, Event, build_validator
from jwkguard._forward_auth import ForwardAuthApp, parse_config
from jwkguard.fleet import Fleet, FleetSettings, RedisReplayLedger, RedisStore
from jwkguard.lifecycle import LifecycleAdmin, ReuseWatch
from jwkguard.sender import DPoPVerifier
from jwkguard.testing import LocalIssuer, SigningKey, generate_key, make_dpop_proof

from ..servers import ASGIServer, RedisServer, free_port

HOST = "api.example.com"
GATEWAYS_DOC = Path(__file__).resolve().parents[2] / "docs" / "gateways.md"


@pytest.fixture(scope="module")
def proof_key() -> SigningKey:
    return generate_key("ES256")


def document(issuer: LocalIssuer, lifecycle: dict[str, Any]) -> dict[str, Any]:
    return {
        "server": {"audit": False, "metrics": False, "gateway": "nginx"},
        "validator": {
            "algorithms": ["RS256"],
            "issuers": [
                {"issuer": issuer.url, "audiences": [issuer.audience], "jwks": issuer.jwks()}
            ],
        },
        "routes": [{"path": "/orders"}],
        "sender": {"dpop": True},
        "lifecycle": lifecycle,
    }


def shared(redis_server: RedisServer, **options: Any) -> dict[str, Any]:
    """A ``[lifecycle]`` table on its own prefix of the test's Redis."""
    return {"redis_url": redis_server.url, "prefix": f"serve-{uuid.uuid4().hex[:8]}:", **options}


def headers(token: str, proof: str | None = None, uri: str = "/orders") -> dict[str, str]:
    sent = {
        "X-Original-URI": uri,
        "X-Original-Method": "GET",
        "X-Forwarded-Host": HOST,
        "X-Forwarded-Proto": "https",
        "Authorization": f"{'DPoP' if proof else 'Bearer'} {token}",
    }
    if proof is not None:
        sent["DPoP"] = proof
    return sent


def dpop_pair(issuer: LocalIssuer, key: SigningKey) -> tuple[str, str]:
    """A token bound to ``key`` and one proof for ``GET /orders``."""
    token = issuer.mint(cnf={"jkt": key.thumbprint})
    proof = make_dpop_proof(key, method="GET", url=f"https://{HOST}/orders", access_token=token)
    return token, proof


@contextmanager
def served(*apps: ForwardAuthApp) -> Iterator[list[httpx.Client]]:
    """Each app under uvicorn on 127.0.0.1, lifespan on (as ``jwkguard serve`` runs it)."""
    with ExitStack() as stack:
        servers = [stack.enter_context(ASGIServer(app, lifespan="on")) for app in apps]
        yield [
            stack.enter_context(httpx.Client(base_url=server.url, timeout=10)) for server in servers
        ]


def refusal(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    return str(response.json()["reason"])


# -- (a) the DPoP replay ledger is the fleet's ----------------------------------------------


def test_a_proof_spent_on_one_instance_is_a_replay_on_every_instance(
    issuer: LocalIssuer, proof_key: SigningKey, redis_server: RedisServer
) -> None:
    config = parse_config(document(issuer, shared(redis_server, on_unavailable="fail_closed")))
    token, proof = dpop_pair(issuer, proof_key)
    apps = ForwardAuthApp(config), ForwardAuthApp(config)
    with served(*apps) as (one, two):
        accepted = one.get("/auth", headers=headers(token, proof))
        assert accepted.status_code == 200, accepted.text
        assert refusal(two.get("/auth", headers=headers(token, proof))) == "dpop_replayed"
        assert refusal(one.get("/auth", headers=headers(token, proof))) == "dpop_replayed"
    for app in apps:  # the lifespan's shutdown stopped each instance's store
        assert app.fleet is not None
        assert app.fleet.store._thread is None


@pytest.mark.anyio
async def test_an_app_whose_lifespan_never_ran_still_consults_the_fleet(
    issuer: LocalIssuer, proof_key: SigningKey, redis_server: RedisServer
) -> None:
    """Mounted without its lifespan (``--lifespan off``, inside another ASGI app), the store
    starts on its first use: a replayed proof or a revoked token is not waved through as if
    Redis were down."""
    lifecycle = shared(redis_server)  # fail_open, the default
    config = parse_config(document(issuer, lifecycle))
    first, second = ForwardAuthApp(config), ForwardAuthApp(config)
    token, proof = dpop_pair(issuer, proof_key)
    token_id = uuid.uuid4().hex
    revoked = issuer.mint(jti=token_id)
    with RedisStore(redis_server.url, prefix=lifecycle["prefix"]) as admin_store:
        LifecycleAdmin(admin_store).revoke_token(
            token_id, issuer=issuer.url, expires_at=time.time() + 600, by="test", why="leaked"
        )

    async def ask(app: ForwardAuthApp, sent: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
            return await client.get("/auth", headers=sent)

    try:
        accepted = await ask(first, headers(token, proof))
        assert accepted.status_code == 200, accepted.text
        for app in (second, first):
            assert refusal(await ask(app, headers(token, proof))) == "dpop_replayed"
            assert refusal(await ask(app, headers(revoked))) == "revoked"
    finally:
        for app in (first, second):
            assert app.fleet is not None
            await app.fleet.aclose()


# -- (b) revocations made through one instance's store --------------------------------------


def test_a_token_revoked_through_one_instance_is_refused_by_the_other(
    issuer: LocalIssuer, redis_server: RedisServer
) -> None:
    config = parse_config(document(issuer, shared(redis_server)))
    first, second = ForwardAuthApp(config), ForwardAuthApp(config)
    token_id = uuid.uuid4().hex
    token = issuer.mint(jti=token_id)
    with served(first, second) as (one, two):
        assert one.get("/auth", headers=headers(token)).status_code == 200
        assert two.get("/auth", headers=headers(token)).status_code == 200
        assert first.fleet is not None
        LifecycleAdmin(first.fleet.store).revoke_token(
            token_id, issuer=issuer.url, expires_at=time.time() + 600, by="test", why="leaked"
        )
        deadline = time.monotonic() + 5
        while (answer := two.get("/auth", headers=headers(token))).status_code == 200:
            assert time.monotonic() < deadline, "still accepted 5 s after the revocation"
            time.sleep(0.02)
        assert refusal(answer) == "revoked"
        assert refusal(one.get("/auth", headers=headers(token))) == "revoked"


# -- (c) the [lifecycle] table reads the fleet settings -------------------------------------


def test_the_lifecycle_table_keeps_its_keys_and_defaults(issuer: LocalIssuer) -> None:
    config = parse_config(document(issuer, {"redis_url": "redis://127.0.0.1:1/0"}))
    settings = config.lifecycle
    assert isinstance(settings, FleetSettings)
    assert (settings.redis_url, settings.prefix, settings.on_unavailable) == (
        "redis://127.0.0.1:1/0",
        "jwkguard:",
        "fail_open",
    )
    # serve sees the gateway's address, not the client's: no reuse watch unless asked for.
    assert settings.reuse is None
    assert settings.dpop_replay is True
    assert settings.store_options == {}


def test_the_lifecycle_table_takes_every_fleet_option(issuer: LocalIssuer) -> None:
    lifecycle = {
        "redis_url": "redis://127.0.0.1:1/0",  # nothing listens: building does no IO
        "prefix": "edge:",
        "on_unavailable": "fail_closed",
        "reuse": {"max_uses": 50, "max_addresses": 3, "window": 60},
        "dpop_replay": True,
        "heartbeat": 0.5,
        "resync_interval": 30,
        "socket_timeout": 0.25,
        "connect_timeout": 0.75,
        "restore": False,
    }
    app = ForwardAuthApp(parse_config(document(issuer, lifecycle)))
    fleet = app.fleet
    assert isinstance(fleet, Fleet)
    assert fleet.store._thread is None  # started on first use, in the process that serves
    assert fleet.store._prefix == "edge:"
    assert fleet.store._heartbeat == 0.5
    assert fleet.store._resync_interval == 30
    assert fleet.store._connection.socket_timeout == 0.25
    assert fleet.store._connection._timeouts["socket_connect_timeout"] == 0.75
    assert fleet.store._restore is False
    assert app.validator.lifecycle is fleet.lifecycle
    assert fleet.lifecycle.on_unavailable == "fail_closed"
    assert fleet.lifecycle.reuse == ReuseWatch(max_addresses=3, max_uses=50, window=60)
    dpop = app.sender.constraints.dpop
    assert dpop is not None
    assert isinstance(dpop.replay, RedisReplayLedger)
    assert dpop.replay.store is fleet.store
    assert dpop.replay.on_unavailable == "fail_closed"
    fleet.close()


def test_the_documented_lifecycle_table_is_valid(issuer: LocalIssuer) -> None:
    (block,) = re.findall(r"```toml\n(.*?)```", GATEWAYS_DOC.read_text(encoding="utf-8"), re.S)
    documented = tomllib.loads(block)["lifecycle"]
    config = parse_config(document(issuer, documented))
    assert config.lifecycle is not None
    assert config.lifecycle.redis_url == "redis://127.0.0.1:6379/0"
    assert config.lifecycle.store_options == {"socket_timeout": 0.5}


def test_reuse_true_turns_on_the_default_watch(issuer: LocalIssuer) -> None:
    config = parse_config(document(issuer, {"redis_url": "redis://h/0", "reuse": True}))
    assert config.lifecycle is not None
    assert config.lifecycle.reuse == ReuseWatch()


def test_dpop_replay_false_keeps_proofs_in_this_process(issuer: LocalIssuer) -> None:
    lifecycle = {"redis_url": "redis://127.0.0.1:1/0", "dpop_replay": False}
    app = ForwardAuthApp(parse_config(document(issuer, lifecycle)))
    dpop = app.sender.constraints.dpop
    assert isinstance(dpop, DPoPVerifier)
    assert not isinstance(dpop.replay, RedisReplayLedger)
    assert app.fleet is not None
    app.fleet.close()


@pytest.mark.parametrize(
    ("lifecycle", "message"),
    [
        ("redis://127.0.0.1:6379/0", "[lifecycle] must be a table"),
        ({"prefix": "x:"}, "[lifecycle].REDIS_URL must be a Redis URL"),
        ({"redis_url": ""}, "[lifecycle].REDIS_URL must be a Redis URL"),
        ({"redis_url": 6379}, "[lifecycle].REDIS_URL must be a Redis URL"),
        ({"redis_url": "redis://h/0", "prefix": 1}, "[lifecycle].PREFIX must be a string"),
        ({"redis_url": "redis://h/0", "on_unavailable": "open"}, "[lifecycle].ON_UNAVAILABLE"),
        ({"redis_url": "redis://h/0", "reuse": "yes"}, "[lifecycle].REUSE must be a mapping"),
        (
            {"redis_url": "redis://h/0", "reuse": {"max_adresses": 2}},
            "[lifecycle].REUSE: unknown options: MAX_ADRESSES (did you mean MAX_ADDRESSES?)",
        ),
        ({"redis_url": "redis://h/0", "reuse": {"max_addresses": 0}}, "[lifecycle].REUSE:"),
        ({"redis_url": "redis://h/0", "dpop_replay": "yes"}, "[lifecycle].DPOP_REPLAY"),
        ({"redis_url": "redis://h/0", "restore": 1}, "[lifecycle].RESTORE must be True or"),
        (
            {"redis_url": "redis://h/0", "heartbeat": 0},
            "[lifecycle]: heartbeat must be a positive number of seconds",
        ),
        (
            {"redis_url": "redis://h/0", "socket_timeout": "fast"},
            "[lifecycle]: socket_timeout must be a positive number of seconds",
        ),
        (
            {"redis_url": "redis://h/0", "resync_interval": float("nan")},
            "[lifecycle]: resync_interval must be a positive number of seconds",
        ),
        (
            {"redis_url": "redis://h/0", "connect_timeout": float("inf")},
            "[lifecycle]: connect_timeout must be a positive number of seconds",
        ),
        ({"redis_url": "http://h/0"}, "[lifecycle]: not a Redis URL"),
        (
            {"redis_url": "redis://h/0", "prefx": "x:"},
            "[lifecycle]: unknown keys: prefx (did you mean prefix?)",
        ),
        # The table is TOML: keys are written as documented, lower case.
        ({"REDIS_URL": "redis://h/0"}, "[lifecycle]: unknown keys: REDIS_URL"),
    ],
)
def test_a_bad_lifecycle_table_is_refused_at_load_naming_it(
    issuer: LocalIssuer, lifecycle: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse_config(document(issuer, lifecycle))
    assert message in str(refused.value)


# -- (d) on_unavailable while Redis is down -------------------------------------------------


@pytest.mark.parametrize(("policy", "status"), [("fail_open", 200), ("fail_closed", 503)])
def test_with_redis_down_on_unavailable_decides(
    issuer: LocalIssuer, proof_key: SigningKey, policy: str, status: int
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    lifecycle = {"redis_url": down, "on_unavailable": policy, "connect_timeout": 0.2}
    events: list[Event] = []
    app = ForwardAuthApp(parse_config(document(issuer, lifecycle)), on_event=events.append)
    bearer = issuer.mint()
    token, proof = dpop_pair(issuer, proof_key)
    with served(app) as (client,):
        plain = client.get("/auth", headers=headers(bearer))
        bound = client.get("/auth", headers=headers(token, proof))
    for response in (plain, bound):
        assert response.status_code == status, response.text
        if status == 503:
            assert response.headers["Retry-After"]
    # The store's, the policy's and the replay ledger's events reach the server's handlers
    # (closed, the lifecycle check refuses before the proof is looked up).
    kinds = {event.kind for event in events}
    assert {"store_unavailable", f"lifecycle_{policy}"} <= kinds
    assert ("dpop_replay_fail_open" in kinds) is (policy == "fail_open")


def test_a_ready_validator_and_a_lifecycle_table_are_refused_together(
    issuer: LocalIssuer,
) -> None:
    """The fleet gives the validator its lifecycle; a ready validator would silently lack it."""
    config = parse_config(document(issuer, {"redis_url": "redis://127.0.0.1:1/0"}))
    ready = build_validator(config.validator)
    with pytest.raises(ConfigurationError, match=r"\[lifecycle\] gives the validator"):
        ForwardAuthApp(config, validator=ready)
