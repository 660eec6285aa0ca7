"""`jwkguard inspect` and `jwkguard verify`: incident review of one token, with exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from jwkguard._cli import cli
from jwkguard.testing import LocalIssuer, SigningKey, generate_key, mint_token, sign_compact

from .conftest import JWKGUARD

ISSUER = "https://id.example.com/"
AUDIENCE = "https://api.example.com"
NOW = 1_800_000_000


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_key("RS256", kid="incident-1")


@pytest.fixture
def jwks_file(tmp_path: Path, key: SigningKey) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [dict(key.public_jwk)]}))
    return path


def token_for(key: SigningKey, **claims: Any) -> str:
    claims.setdefault("issuer", ISSUER)
    claims.setdefault("audience", AUDIENCE)
    claims.setdefault("now", NOW)
    return mint_token(key, **claims)


def verify(token: str, jwks: Path | str, *extra: str) -> Result:
    return run(
        "verify",
        token,
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
        "--jwks",
        str(jwks),
        "--json",
        *extra,
    )


def checks(result: Result) -> dict[str, str]:
    return {check["check"]: check["outcome"] for check in json.loads(result.stdout)["checks"]}


# -- inspect --------------------------------------------------------------------------------


def test_inspect_shows_header_claims_times_and_is_marked_unverified(key: SigningKey) -> None:
    token = mint_token(key, issuer=ISSUER, audience=AUDIENCE, scopes="orders:read")
    result = run("inspect", token)
    assert result.exit_code == 0
    assert result.stdout.startswith("UNVERIFIED")
    assert "incident-1" in result.output
    assert "UTC" in result.output
    assert re.search(r"exp    \S+ \S+ UTC  \(in (4m 5\ds|5m)\)", result.output)
    assert "orders:read" in result.output


def test_inspect_json_has_times_in_utc_and_relative(key: SigningKey) -> None:
    issued = int(time.time()) - 3600
    token = token_for(key, lifetime=600, now=issued)
    document = json.loads(run("inspect", token, "--json").stdout)
    assert document["verified"] is False
    assert document["kid"] == "incident-1"
    expires = datetime.fromtimestamp(issued + 600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert document["times"]["exp"]["utc"] == expires
    assert document["times"]["exp"]["relative"] in ("50m ago", "50m 1s ago")
    assert document["token_hash"].startswith("sha256:")
    assert any(note.startswith("expired") for note in document["warnings"])


def test_inspect_reads_stdin_and_strips_a_bearer_prefix(key: SigningKey) -> None:
    token = token_for(key)
    result = run("inspect", "-", "--json", stdin=f"Bearer {token}\n")
    assert json.loads(result.stdout)["claims"]["sub"] == "user-123"


def test_inspect_flags_dangerous_headers(key: SigningKey) -> None:
    token = sign_compact({"alg": "none", "jku": "https://evil.example/jwks"}, {"sub": "x"})
    warnings = json.loads(run("inspect", token, "--json").stdout)["warnings"]
    assert any("'none'" in warning for warning in warnings)
    assert any(warning.startswith("jku is ignored") for warning in warnings)


@pytest.mark.parametrize(
    ("token", "words"),
    [("not-a-token", "not a compact JWS"), ("a.b.c.d.e", "Encrypted tokens (JWE)")],
)
def test_inspect_of_a_malformed_token_exits_1(token: str, words: str) -> None:
    result = CliRunner().invoke(cli, ["inspect", token])
    assert result.exit_code == 1
    assert words in result.output


# -- verify ---------------------------------------------------------------------------------


def test_verify_names_the_signing_key_and_passes_every_check(
    key: SigningKey, jwks_file: Path
) -> None:
    token = token_for(key, scopes="orders:read")
    result = verify(token, jwks_file, "--at", str(NOW + 10), "--scope", "orders:read")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["valid"] is True
    assert document["key"] == {
        "kid": "incident-1",
        "thumbprint": key.thumbprint,
        "kty": "RSA",
        "alg": "RS256",
    }
    assert document["at"] == "2027-01-15T08:00:10Z"
    assert set(checks(result).values()) == {"pass"}


def test_verify_at_a_time_after_expiry_is_invalid_but_signed_by_the_key(
    key: SigningKey, jwks_file: Path
) -> None:
    token = token_for(key, lifetime=300)
    result = verify(token, jwks_file, "--at", "2027-01-15T08:05:00Z")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["error"]["reason"] == "expired"
    assert document["key"]["thumbprint"] == key.thumbprint
    outcomes = checks(result)
    assert outcomes["signature"] == "pass"
    assert outcomes["exp"] == "fail"
    assert outcomes["audience"] == "pass"


def test_verify_before_nbf_fails_nbf_only(key: SigningKey, jwks_file: Path) -> None:
    token = token_for(key)
    result = verify(token, jwks_file, "--at", str(NOW - 60))
    assert result.exit_code == 1
    outcomes = checks(result)
    assert (outcomes["nbf"], outcomes["iat"], outcomes["exp"]) == ("fail", "fail", "pass")


def test_verify_reports_every_failing_claim_not_only_the_first(
    key: SigningKey, jwks_file: Path
) -> None:
    token = token_for(key, audience="https://other.example.com", scopes="a")
    result = verify(token, jwks_file, "--at", str(NOW + 400), "--scope", "b")
    outcomes = checks(result)
    assert (outcomes["exp"], outcomes["audience"], outcomes["scopes"]) == ("fail", "fail", "fail")
    assert json.loads(result.stdout)["error"]["reason"] == "expired"


def test_verify_with_a_key_missing_from_the_set_lists_the_set(
    jwks_file: Path,
) -> None:
    stranger = generate_key("RS256", kid="stranger")
    result = verify(token_for(stranger), jwks_file, "--at", str(NOW))
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["key"] is None
    assert document["available_kids"] == ["incident-1"]
    assert checks(result)["key"] == "fail"
    assert "signature" not in checks(result)


def test_verify_refuses_a_forged_signature(key: SigningKey, jwks_file: Path) -> None:
    header, payload, _ = token_for(key).split(".")
    forged = f"{header}.{payload}.{token_for(generate_key('RS256')).split('.')[2]}"
    result = verify(forged, jwks_file, "--at", str(NOW))
    assert result.exit_code == 1
    assert checks(result)["signature"] == "fail"


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_verify_refuses_alg_none_and_hmac_with_the_public_key(
    key: SigningKey, jwks_file: Path, alg: str
) -> None:
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": NOW + 60}
    header = {"alg": alg, "kid": key.kid}
    public_pem = json.dumps(dict(key.public_jwk)).encode()
    forged = (
        sign_compact(header, payload)
        if alg == "none"
        else sign_compact(header, payload, secret=public_pem, alg="HS256")
    )
    result = verify(forged, jwks_file, "--at", str(NOW))
    assert result.exit_code == 1
    assert checks(result)["algorithm"] == "fail"


def test_verify_refuses_an_untrusted_issuer(key: SigningKey, jwks_file: Path) -> None:
    token = token_for(key, issuer="https://evil.example.com/")
    result = verify(token, jwks_file, "--at", str(NOW))
    assert result.exit_code == 1
    assert checks(result)["issuer"] == "fail"


def test_verify_text_output_is_aligned_and_explains(key: SigningKey, jwks_file: Path) -> None:
    token = token_for(key)
    result = run(
        "verify",
        token,
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
        "--jwks",
        str(jwks_file),
        "--at",
        str(NOW + 400),
    )
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith("INVALID  at 2027-01-15 08:06:40 UTC")
    assert "expired (exp)" in first
    assert f"thumbprint {key.thumbprint}" in result.output
    assert "✗  exp" in result.output


def test_verify_usage_errors_exit_2(key: SigningKey, jwks_file: Path, tmp_path: Path) -> None:
    token = token_for(key)
    assert run("verify", token, "--issuer", ISSUER, "--jwks", str(jwks_file)).exit_code == 2
    missing = verify(token, tmp_path / "nope.json")
    assert missing.exit_code == 2
    assert "no such file" in json.loads(missing.stdout)["error"]
    assert verify(token, jwks_file, "--at", "yesterday-ish").exit_code == 2


def test_verify_against_a_remote_jwks_url(issuer: LocalIssuer) -> None:
    token = issuer.mint()
    result = run(
        "verify",
        token,
        "--issuer",
        issuer.url,
        "--audience",
        issuer.audience,
        "--jwks",
        issuer.jwks_uri,
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["key"]["kid"] == issuer.active_key.kid


def test_verify_exits_3_when_the_keys_cannot_be_fetched(issuer: LocalIssuer) -> None:
    token = issuer.mint()
    with issuer.outage():
        result = run(
            "verify", token, "--issuer", issuer.url, "--audience", issuer.audience, "--json"
        )
    assert result.exit_code == 3, result.output
    assert json.loads(result.stdout)["error"]["status_code"] == 503


def test_console_script_returns_the_exit_status(key: SigningKey, jwks_file: Path) -> None:
    command = [JWKGUARD, "verify", "-", "--issuer", ISSUER, "--audience", AUDIENCE]
    command += ["--jwks", str(jwks_file), "--at", str(NOW + 3600)]
    result = subprocess.run(
        command, input=token_for(key), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stdout.startswith("INVALID")
