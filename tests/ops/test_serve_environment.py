"""`jwkguard serve` reads the shared ``JWKGUARD_<KEY>`` scheme into ``[validator]``; typos get
"did you mean"; without a configuration the error names ``--config``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from jwkguard import ConfigurationError
from jwkguard._cli import cli
from jwkguard._forward_auth import load_config

from .conftest import forward_auth_toml


def test_flat_variables_fill_the_validator_table_as_in_every_adapter() -> None:
    config = load_config(
        None,
        {
            "JWKGUARD__SERVER__GATEWAY": "nginx",
            "JWKGUARD_ISSUER": "https://id.example.com/",
            "JWKGUARD_AUDIENCES": "https://api.example.com",
            "JWKGUARD_ALGORITHMS": "RS256,ES256",
            "JWKGUARD_LEEWAY": "5",
        },
    )
    assert dict(config.validator) == {
        "algorithms": ["RS256", "ES256"],
        "leeway": 5,
        "issuers": [
            {"issuer": "https://id.example.com/", "audiences": ["https://api.example.com"]}
        ],
    }


def test_flat_variables_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "jwkguard.toml"
    path.write_text(forward_auth_toml(issuer="https://old.example/", audience="old", port=9180))
    environ = {
        "JWKGUARD_ISSUER": "https://new.example/",
        "JWKGUARD_AUDIENCES": "new",
        "JWKGUARD_CONFIG": str(path),
    }
    config = load_config(None, environ)
    assert config.validator["issuers"] == [{"issuer": "https://new.example/", "audiences": ["new"]}]


def test_nested_overrides_take_json_objects() -> None:
    config = load_config(
        None,
        {
            "JWKGUARD__SERVER__GATEWAY": "envoy",
            "JWKGUARD__SERVER__CLAIM_HEADERS": '{"X-Auth-Email": "email"}',
            "JWKGUARD_ISSUERS": '[{"issuer": "https://id/", "audiences": ["x"]}]',
            "JWKGUARD_ALGORITHMS": '["ES256"]',
        },
    )
    assert config.claim_headers == {"X-Auth-Email": "email"}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"JWKGUARD__SERVER__GATEWAY": "nginx", "JWKGUARD_ALGORITHM": "RS256"},
            "JWKGUARD_ALGORITHM (did you mean JWKGUARD_ALGORITHMS?)",
        ),
        (
            {"JWKGUARD__SERVER__PROT": "9000", "JWKGUARD_ALGORITHMS": "RS256"},
            "[server]: unknown keys: prot (did you mean port?)",
        ),
    ],
)
def test_typos_are_reported_with_the_closest_name(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(None, environ)
    assert message in str(caught.value)


def test_serve_without_configuration_mentions_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JWKGUARD_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--check"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "a [validator] table is required" in result.output
    assert "pass --config FILE or set JWKGUARD_CONFIG" in result.output
    assert "Traceback" not in result.output
