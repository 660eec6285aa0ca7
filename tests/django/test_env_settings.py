"""``JWKGUARD`` from ``JWKGUARD_*`` environment variables: the dict's keys, adapter keys too."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.test import Client, override_settings

from jwkguard import ConfigurationError
from jwkguard.testing import LocalIssuer
from jwkguard_django.conf import get_state, settings_from_env


def test_variables_become_the_setting_dict_with_adapter_keys(issuer: LocalIssuer) -> None:
    environ = {
        "JWKGUARD_ISSUER": issuer.url,
        "JWKGUARD_AUDIENCES": issuer.audience,
        "JWKGUARD_JWKS_URI": issuer.jwks_uri,
        "JWKGUARD_ALGORITHMS": issuer.alg,
        "JWKGUARD_MODE": "optional",
        "JWKGUARD_EXEMPT_PATHS": '["/health"]',
        "JWKGUARD_CLOCK": "time.time",
    }
    settings = settings_from_env(environ)
    assert settings["MODE"] == "optional"
    assert settings["ISSUERS"] == [
        {"issuer": issuer.url, "audiences": [issuer.audience], "jwks_uri": issuer.jwks_uri}
    ]
    with override_settings(JWKGUARD=settings):
        assert [m.id for m in run_checks() if m.id and m.id.startswith("jwkguard.")] == []
        assert get_state().options.mode == "optional"
        assert Client().get("/plain").status_code == 200
        token = issuer.mint(subject="env")
        answer = Client().get("/plain", headers={"Authorization": f"Bearer {token}"})
        assert answer.json()["sub"] == "env"


def test_misspelt_variables_are_refused_with_the_closest_adapter_key() -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings_from_env({"JWKGUARD_EXEMPT_PATH": "/health", "JWKGUARD_MDOE": "protect"})
    assert str(caught.value) == (
        "unknown environment variables: "
        "JWKGUARD_EXEMPT_PATH (did you mean JWKGUARD_EXEMPT_PATHS?), "
        "JWKGUARD_MDOE (did you mean JWKGUARD_MODE?)"
    )
