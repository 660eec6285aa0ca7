"""`jwkguard issuer`: a local issuer on loopback that prints a ready-to-paste token, the
``JWKGUARD_*`` settings and a curl line; `/token` mints more; Ctrl-C (or --duration) stops it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from jwkguard import InsufficientScope, validator_from_env
from jwkguard._cli import cli
from jwkguard._cli._review import decode_token

from ..servers import stop_process
from .conftest import JWKGUARD


def test_once_prints_the_token_settings_and_curl_line_then_stops() -> None:
    result = CliRunner().invoke(
        cli,
        ["issuer", "--port", "0", "--once", "--scope", "orders:read", "--claim", 'roles=["a"]'],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    out = result.output
    assert "export JWKGUARD_ISSUER=http://127.0.0.1:" in out
    assert "JWKGUARD_AUDIENCES=https://api.example.com JWKGUARD_ALGORITHMS=RS256" in out
    assert "curl -H 'Authorization: Bearer ey" in out
    assert "http://127.0.0.1:8000/" in out


def test_json_describes_the_issuer_and_its_token() -> None:
    result = CliRunner().invoke(
        cli,
        ["issuer", "--port", "0", "--once", "--json", "--alg", "ES256", "--subject", "ada"],
        catch_exceptions=False,
    )
    document = json.loads(result.output)
    payload = decode_token(document["access_token"], time.time()).payload
    assert payload["iss"] == document["issuer"] == document["environment"]["JWKGUARD_ISSUER"]
    assert (payload["sub"], payload["aud"]) == ("ada", "https://api.example.com")
    assert payload["exp"] - payload["iat"] == 3600
    assert document["environment"]["JWKGUARD_ALGORITHMS"] == "ES256"
    assert document["jwks_uri"].startswith("http://127.0.0.1:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--claim", "novalue"], "is not NAME=VALUE"),
        (["--lifetime", "0"], "--lifetime"),
        (["--alg", "HS256"], "--alg"),
    ],
)
def test_bad_options_exit_2_without_a_traceback(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["issuer", "--port", "0", "--once", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_busy_port_is_named_with_the_way_out() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["issuer", "--port", str(port), "--once"])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "--port 0" in result.output


@pytest.fixture
def running() -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    command = [JWKGUARD, "issuer", "--port", "0", "--json", "--scope", "orders:read"]
    command += ["--duration", "60"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 20
        document = None
        while document is None and time.monotonic() < deadline:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.rstrip() == "}":
                document = json.loads("".join(lines))
        assert document is not None, "".join(lines)
        yield process, document
    finally:
        stop_process(process)


def test_the_running_issuer_serves_keys_for_its_tokens_and_mints_more(
    running: tuple[subprocess.Popen[str], dict[str, Any]],
) -> None:
    process, document = running
    validator = validator_from_env(document["environment"])
    try:
        claims = validator.validate(document["access_token"], scopes=["orders:read"])
        assert claims.subject == "alice"
        minted = httpx.get(
            document["token_endpoint"],
            params={"scope": "orders:write", "sub": "bob", "lifetime": "60"},
            timeout=10,
        )
        assert minted.status_code == 200
        assert minted.headers["cache-control"] == "no-store"
        answer = minted.json()
        assert (answer["token_type"], answer["expires_in"]) == ("Bearer", 60)
        more = validator.validate(answer["access_token"], scopes=["orders:write"])
        assert more.subject == "bob"
        with pytest.raises(InsufficientScope):
            validator.validate(answer["access_token"], scopes=["orders:read"])
        refused = httpx.get(document["token_endpoint"], params={"lifetime": "0"}, timeout=10)
        assert refused.status_code == 400
    finally:
        validator.close()
    process.send_signal(signal.SIGINT)  # Ctrl-C
    assert process.wait(timeout=10) == 0
