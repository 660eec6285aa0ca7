"""Settings from ``JWKGUARD_*`` environment variables: one scheme, the settings dicts' keys."""

from __future__ import annotations

import pytest

from jwkguard import ConfigurationError, InsufficientScope, settings_from_env, validator_from_env
from jwkguard.testing import LocalIssuer

ISSUER = "https://id.example.com/"


def test_one_issuer_is_given_flat_beside_the_validator_settings() -> None:
    settings = settings_from_env(
        {
            "JWKGUARD_ISSUER": ISSUER,
            "JWKGUARD_AUDIENCES": "https://api.example.com, https://other.example.com",
            "JWKGUARD_JWKS_URI": "https://id.example.com/keys",
            "JWKGUARD_ALGORITHMS": "RS256,ES256",
            "JWKGUARD_LEEWAY": "30",
            "JWKGUARD_MAX_AGE": "1.5",
            "JWKGUARD_TOKEN_CACHE": "true",
            "JWKGUARD_ALLOW_INSECURE_HTTP": "False",
            "HOME": "/root",
        }
    )
    assert settings == {
        "algorithms": ["RS256", "ES256"],
        "leeway": 30,
        "max_age": 1.5,
        "token_cache": True,
        "issuers": [
            {
                "issuer": ISSUER,
                "audiences": ["https://api.example.com", "https://other.example.com"],
                "jwks_uri": "https://id.example.com/keys",
                "allow_insecure_http": False,
            }
        ],
    }


def test_lists_and_dicts_are_json() -> None:
    settings = settings_from_env(
        {
            "JWKGUARD_ISSUERS": '[{"issuer": "https://a.example/", "audiences": ["api"]},'
            ' {"ISSUER": "https://b.example/", "AUDIENCES": ["api"]}]',
            "JWKGUARD_ALGORITHMS": '["ES256"]',
            "JWKGUARD_TOKEN_CACHE": '{"max_entries": 100}',
        }
    )
    assert settings["algorithms"] == ["ES256"]
    assert settings["token_cache"] == {"max_entries": 100}
    assert [issuer.get("issuer", issuer.get("ISSUER")) for issuer in settings["issuers"]] == [
        "https://a.example/",
        "https://b.example/",
    ]


def test_string_settings_are_never_read_as_numbers_or_flags() -> None:
    settings = settings_from_env(
        {"JWKGUARD_ISSUER": "12345", "JWKGUARD_SECRET": "true", "JWKGUARD_SCOPE_CLAIM": "007"}
    )
    assert settings["issuers"] == [{"issuer": "12345", "secret": "true", "scope_claim": "007"}]


def test_misspelt_variables_are_refused_with_the_closest_name() -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings_from_env({"JWKGUARD_AUDIENCE": "api", "JWKGUARD_ALGORITHM": "RS256"})
    assert str(caught.value) == (
        "unknown environment variables: JWKGUARD_ALGORITHM (did you mean JWKGUARD_ALGORITHMS?), "
        "JWKGUARD_AUDIENCE (did you mean JWKGUARD_AUDIENCES?)"
    )


def test_adapter_keys_are_known_only_when_the_adapter_names_them() -> None:
    environ = {"JWKGUARD_EXEMPT_PATHS": "/health,/ready"}
    with pytest.raises(ConfigurationError, match="JWKGUARD_EXEMPT_PATHS"):
        settings_from_env(environ)
    assert settings_from_env(environ, extra={"exempt_paths"}) == {
        "exempt_paths": ["/health", "/ready"]
    }


def test_commands_variables_nested_overrides_and_empty_values_are_not_settings() -> None:
    environ = {
        "JWKGUARD_CONFIG": "serve.toml",
        "JWKGUARD_REDIS_URL": "redis://127.0.0.1:6379/0",
        "JWKGUARD__SERVER__PORT": "9000",
        "JWKGUARD_JWKS_URI": "",
        "JWKGUARD_ALGORITHMS": "RS256",
    }
    assert settings_from_env(environ) == {"algorithms": ["RS256"]}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"JWKGUARD_ALGORITHMS": '["RS256"'}, "JWKGUARD_ALGORITHMS is not valid JSON"),
        (
            {"JWKGUARD_ISSUERS": '[{"issuer": "x"}]', "JWKGUARD_ISSUER": "y"},
            "set JWKGUARD_ISSUERS or JWKGUARD_ISSUER with its options, not both",
        ),
        (
            {"JWKGUARD_AUDIENCES": "api", "JWKGUARD_JWKS_URI": "https://id.example.com/k"},
            "JWKGUARD_AUDIENCES, JWKGUARD_JWKS_URI need JWKGUARD_ISSUER",
        ),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        settings_from_env(environ)


def test_validator_from_env_names_what_is_missing() -> None:
    with pytest.raises(ConfigurationError, match=r"^set JWKGUARD_ISSUER, JWKGUARD_ALGORITHMS$"):
        validator_from_env({})
    with pytest.raises(ConfigurationError, match=r"^set JWKGUARD_AUDIENCES$"):
        validator_from_env({"JWKGUARD_ISSUER": ISSUER, "JWKGUARD_ALGORITHMS": "RS256"})


def test_validator_from_env_refuses_bad_values_naming_the_environment() -> None:
    environ = {
        "JWKGUARD_ISSUER": ISSUER,
        "JWKGUARD_AUDIENCES": "api",
        "JWKGUARD_ALGORITHMS": "none",
    }
    with pytest.raises(ConfigurationError, match=r"^JWKGUARD_\* environment: "):
        validator_from_env(environ)


def test_validator_from_env_accepts_the_issuers_tokens(local_issuer: LocalIssuer) -> None:
    validator = validator_from_env(
        {
            "JWKGUARD_ISSUER": local_issuer.url,
            "JWKGUARD_AUDIENCES": local_issuer.audience,
            "JWKGUARD_JWKS_URI": local_issuer.jwks_uri,
            "JWKGUARD_ALGORITHMS": local_issuer.alg,
            "JWKGUARD_REQUIRED_SCOPES": "orders:read",
        }
    )
    try:
        claims = validator.validate(local_issuer.mint(subject="ada", scopes=["orders:read"]))
        assert claims.subject == "ada"
        with pytest.raises(InsufficientScope):
            validator.validate(local_issuer.mint(subject="ada"))
    finally:
        validator.close()
