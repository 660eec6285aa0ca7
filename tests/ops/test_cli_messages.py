"""CLI messages name the way out: the cause of ``keys_unavailable``, ``--allow-http``,
``- < FILE`` for token files; never a traceback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from click.testing import CliRunner, Result

from jwkguard._cli import cli
from jwkguard.testing import generate_key, mint_token

ISSUER = "https://id.example.com/"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def token() -> str:
    return mint_token(generate_key("RS256", kid="k1"), issuer=ISSUER, audience="api")


def test_verify_names_the_cause_of_keys_unavailable() -> None:
    jwks = f"http://127.0.0.1:{closed_port()}/jwks.json"
    common = (token(), "--issuer", ISSUER, "--audience", "api", "--jwks", jwks)
    result = run("verify", *common)
    assert result.exit_code == 3
    first = result.output.splitlines()[0]
    assert "keys_unavailable" in first
    assert "Connection refused" in first or "ConnectError" in first
    document = json.loads(run("verify", *common, "--json").output)
    assert document["error"]["reason"] == "keys_unavailable"
    assert jwks in document["error"]["cause"]
    (key_check,) = [check for check in document["checks"] if check["check"] == "key"]
    assert document["error"]["cause"] in key_check["detail"]


def test_keys_suggests_allow_http_for_a_plain_http_issuer() -> None:
    result = run("keys", "http://id.example.com/")
    assert result.exit_code == 3
    assert "must use https" in result.output
    assert "pass --allow-http" in result.output
    assert "Traceback" not in result.output


def test_verify_suggests_allow_http_for_a_plain_http_issuer() -> None:
    result = run("verify", token(), "--issuer", "http://id.example.com/", "--audience", "api")
    assert result.exit_code == 2
    assert "pass --allow-http" in result.output


def test_inspect_of_a_file_hints_at_standard_input(tmp_path: Path) -> None:
    path = tmp_path / "token.jwt"
    path.write_text(token())
    result = run("inspect", str(path))
    assert result.exit_code == 2
    assert f"jwkguard inspect - < {path}" in result.output
    assert "Traceback" not in result.output
    from_stdin = CliRunner().invoke(cli, ["inspect", "-", "--json"], input=path.read_text())
    assert from_stdin.exit_code == 0
    assert json.loads(from_stdin.output)["header"]["kid"] == "k1"


def test_inspect_of_a_missing_file_path_hints_at_standard_input() -> None:
    result = run("inspect", "secrets/token.jwt")
    assert result.exit_code == 1
    assert "not a compact JWS" in result.output
    assert "`jwkguard inspect - < FILE`" in result.output


def test_a_token_that_is_not_a_path_gets_no_file_hint() -> None:
    result = run("inspect", "not-a-token")
    assert result.exit_code == 1
    assert "< FILE" not in result.output
