"""System checks: ``manage.py check`` fails on each misconfiguration, with a stable id."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from jwkguard import Issuer
from jwkguard.providers import entra_id_multi_tenant
from jwkguard.testing import LocalIssuer

from .conftest import MIDDLEWARE, jwkguard_settings

ISSUER = "https://id.example.com/"


def run_check(**kwargs: Any) -> str:
    out, err = StringIO(), StringIO()
    call_command("check", stdout=out, stderr=err, **kwargs)
    return out.getvalue() + err.getvalue()


def check_ids() -> set[str]:
    from django.core.checks import run_checks

    return {message.id for message in run_checks() if message.id}


def base(**overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "ISSUERS": [{"ISSUER": ISSUER, "AUDIENCES": ["https://api.example.com"]}],
        "ALGORITHMS": ["RS256"],
    }
    settings.update(overrides)
    return settings


def issuer(**options: Any) -> dict[str, Any]:
    return {"ISSUER": ISSUER, "AUDIENCES": ["https://api.example.com"], **options}


CASES = {
    "jwkguard.E001": None,
    "jwkguard.E002": base(ISSUERS=[]),
    "jwkguard.E003": base(ALGORITHMS=[]),
    "jwkguard.E004": base(ALGORITHMS=["HS256"]),
    "jwkguard.E005": base(ISSUERS=[issuer(ISSUER="http://id.example.com/")]),
    "jwkguard.E006": base(
        ISSUERS=[issuer(ISSUER="https://login.microsoftonline.com/{tenantid}/v2.0")]
    ),
    "jwkguard.E007": base(ALGORITHM=["RS256"]),
    "jwkguard.E008": base(MODE="strict"),
    "jwkguard.E009": base(LEEWAY=-5),
}


@pytest.mark.parametrize(("check_id", "value"), CASES.items(), ids=list(CASES))
def test_manage_py_check_fails_with_the_stable_id(check_id: str, value: Any) -> None:
    with override_settings(JWKGUARD=value), pytest.raises(SystemCheckError) as raised:
        run_check()
    assert check_id in str(raised.value)
    assert "HINT:" in str(raised.value)


def test_the_test_settings_pass_every_check() -> None:
    assert "no issues" in run_check()


def test_a_missing_setting_is_e001() -> None:
    from django.conf import settings

    with override_settings():
        del settings.JWKGUARD
        with pytest.raises(SystemCheckError, match=r"jwkguard\.E001.*JWKGUARD setting is missing"):
            run_check()


def test_typo_gets_a_suggestion() -> None:
    settings = base(ALGORITHM=["RS256"], ISSUERS=[issuer(AUDIENCE=["x"])])
    with override_settings(JWKGUARD=settings), pytest.raises(SystemCheckError) as raised:
        run_check()
    message = str(raised.value)
    assert "ALGORITHM (did you mean ALGORITHMS?)" in message
    assert "ISSUERS[0].AUDIENCE (did you mean AUDIENCES?)" in message


def test_hmac_secret_combined_with_jwks_uri_is_e004() -> None:
    settings = base(
        ALGORITHMS=["HS256"],
        ISSUERS=[issuer(SECRET="s" * 32, JWKS_URI="https://id.example.com/jwks")],
    )
    with override_settings(JWKGUARD=settings), pytest.raises(SystemCheckError) as raised:
        run_check()
    assert "SECRET is combined with JWKS_URI" in str(raised.value)


def test_hmac_with_a_secret_passes() -> None:
    settings = base(ALGORITHMS=["HS256"], ISSUERS=[issuer(SECRET="s" * 32)])
    with override_settings(JWKGUARD=settings):
        assert "no issues" in run_check()


def test_plain_http_jwks_uri_is_e005_unless_loopback_or_allowed() -> None:
    insecure = base(ISSUERS=[issuer(JWKS_URI="http://id.example.com/jwks")])
    with override_settings(JWKGUARD=insecure), pytest.raises(SystemCheckError, match="E005"):
        run_check()
    loopback = base(ISSUERS=[issuer(JWKS_URI="http://127.0.0.1:9/jwks")])
    allowed = base(ISSUERS=[issuer(JWKS_URI="http://idp.internal/jwks", ALLOW_INSECURE_HTTP=True)])
    for settings in (loopback, allowed):
        with override_settings(JWKGUARD=settings):
            assert "jwkguard.E005" not in check_ids()


def test_entra_preset_with_a_tenant_allow_list_passes() -> None:
    tenants = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
    issuers = entra_id_multi_tenant(
        client_id="0b9f6a8e-1111-2222-3333-444455556666", tenant_ids=tenants
    )
    with override_settings(JWKGUARD=base(ISSUERS=issuers)):
        assert "no issues" in run_check()


def test_issuer_objects_are_checked_too() -> None:
    insecure = Issuer("http://id.example.com/", audiences=["a"], allow_insecure_http=True)
    with override_settings(JWKGUARD=base(ISSUERS=[insecure])):
        assert "no issues" in run_check()


def test_unimportable_user_loader_is_e008() -> None:
    settings = base(USER_LOADER="nowhere.loader")
    with override_settings(JWKGUARD=settings), pytest.raises(SystemCheckError) as raised:
        run_check()
    assert "jwkguard.E008" in str(raised.value)
    assert "cannot import 'nowhere.loader'" in str(raised.value)


def test_middleware_after_csrf_is_warning_w001() -> None:
    late = [m for m in MIDDLEWARE if "jwkguard" not in m] + [
        "jwkguard_django.middleware.JWKGuardMiddleware"
    ]
    with override_settings(MIDDLEWARE=late):
        assert "jwkguard.W001" in run_check()
        with pytest.raises(SystemCheckError, match=r"jwkguard\.W001"):
            run_check(fail_level="WARNING")
    assert "W001" not in run_check()


def test_checks_have_unique_ids_in_the_docstring() -> None:
    from jwkguard_django import checks

    documented = [
        line.split("``")[1] for line in (checks.__doc__ or "").splitlines() if "``jwkguard." in line
    ]
    assert len(documented) == len(set(documented)) == 10


def test_jwkguard_settings_helper_is_valid(issuer: LocalIssuer) -> None:
    with override_settings(JWKGUARD=jwkguard_settings(issuer, MODE="optional")):
        assert "no issues" in run_check()
