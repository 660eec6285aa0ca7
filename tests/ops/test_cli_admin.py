"""Fleet admin commands against a real Redis: another process's validator enforces them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner, Result

from jwkguard import Issuer, TokenError, Validator
from jwkguard._cli import cli
from jwkguard.fleet import RedisStore
from jwkguard.lifecycle import Lifecycle
from jwkguard.testing import SigningKey, generate_key, mint_token

from ..servers import RedisServer, free_port

ISSUER = "https://id.example.com/"
AUDIENCE = "https://api.example.com"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_key("RS256", kid="fleet-1")


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return f"test-{request.node.name[:40]}:"


@pytest.fixture
def validator(redis_server: RedisServer, key: SigningKey, prefix: str) -> Iterator[Validator]:
    store = RedisStore(redis_server.url, prefix=prefix, heartbeat=0.2).start()
    try:
        yield Validator(
            issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [dict(key.public_jwk)]})],
            algorithms=["RS256"],
            lifecycle=Lifecycle(store),
        )
    finally:
        store.close()


def admin(redis_server: RedisServer, prefix: str, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(
        cli,
        [*args, "--redis", redis_server.url, "--prefix", prefix, "--by", "alice@ops"],
        input=stdin,
        catch_exceptions=False,
    )


def refused_within(check: Callable[[], object], seconds: float = 1.0) -> str:
    """The lifecycle reason once ``check`` starts failing; fail if it keeps passing."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            check()
        except TokenError as exc:
            return exc.reason
        if time.monotonic() > deadline:
            raise AssertionError(f"still accepted after {seconds} s")
        time.sleep(0.02)


def test_cut_off_subject_is_enforced_by_the_fleet_and_audited(
    redis_server: RedisServer, validator: Validator, key: SigningKey, prefix: str
) -> None:
    old = mint_token(key, issuer=ISSUER, audience=AUDIENCE, subject="bob", now=time.time() - 5)
    validator.validate(old)
    result = admin(
        redis_server, prefix, "cut-off", "subject", "bob", "--issuer", ISSUER, "--why", "left"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("done  subject bob cut off")
    assert refused_within(lambda: validator.validate(old)) == "subject_cut_off"
    record = json.loads(result.stderr.strip().splitlines()[-1])
    assert record["action"] == "subject_cut_off"
    assert (record["actor"], record["reason"], record["issuer"]) == ("alice@ops", "left", ISSUER)
    assert record["value"] == "bob"


def test_revoke_from_a_leaked_token_never_logs_the_token(
    redis_server: RedisServer, validator: Validator, key: SigningKey, prefix: str
) -> None:
    leaked = mint_token(key, issuer=ISSUER, audience=AUDIENCE)
    other = mint_token(key, issuer=ISSUER, audience=AUDIENCE)
    result = admin(redis_server, prefix, "revoke", "--token", "-", "--why", "leak", stdin=leaked)
    assert result.exit_code == 0, result.output
    assert refused_within(lambda: validator.validate(leaked)) == "revoked"
    validator.validate(other)
    assert leaked not in result.output
    assert leaked.split(".")[1] not in result.stderr
    assert json.loads(result.stderr.strip().splitlines()[-1])["action"] == "token_revoked"


def test_distrust_then_trust_a_key_by_thumbprint(
    redis_server: RedisServer, validator: Validator, key: SigningKey, prefix: str
) -> None:
    token = mint_token(key, issuer=ISSUER, audience=AUDIENCE)
    named = ("--issuer", ISSUER, "--thumbprint", key.thumbprint, "--why", "compromised")
    result = admin(redis_server, prefix, "distrust", *named, "--json")
    assert result.exit_code == 0, result.output
    change = json.loads(result.stdout)["change"]
    assert (change["op"], change["key_field"], change["value"]) == (
        "distrust_key",
        "thumbprint",
        key.thumbprint,
    )
    assert refused_within(lambda: validator.validate(token)) == "key_distrusted"
    audit = json.loads(result.stderr.strip().splitlines()[-1])
    assert (audit["action"], audit["thumbprint"]) == ("key_distrusted", key.thumbprint)
    assert admin(redis_server, prefix, "trust", *named).exit_code == 0
    deadline = time.monotonic() + 1
    while True:
        try:
            validator.validate(token)
            break
        except TokenError:
            assert time.monotonic() < deadline, "still distrusted after 1 s"
            time.sleep(0.02)


def test_force_refresh_is_broadcast(redis_server: RedisServer, prefix: str) -> None:
    result = admin(redis_server, prefix, "force-refresh", "--issuer", ISSUER, "--why", "rotated")
    assert result.exit_code == 0, result.output
    assert "refresh of https://id.example.com/'s keys requested" in result.stdout


def test_admin_commands_need_redis_configured() -> None:
    result = CliRunner().invoke(cli, ["cut-off", "subject", "x", "--issuer", ISSUER, "--why", "y"])
    assert result.exit_code == 2
    assert "need --redis" in result.output


def test_admin_commands_exit_3_when_redis_is_unreachable() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    command = ["revoke", "jti-1", "--issuer", ISSUER, "--expires-at", "+1h", "--why", "x"]
    result = CliRunner().invoke(cli, [*command, "--redis", url, "--json"])
    assert result.exit_code == 3
    assert "unreachable" in json.loads(result.stdout)["error"]


def test_distrust_needs_exactly_one_key_name(redis_server: RedisServer, prefix: str) -> None:
    result = admin(redis_server, prefix, "distrust", "--issuer", ISSUER, "--why", "x")
    assert result.exit_code == 2
