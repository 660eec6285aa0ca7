"""docs/migrating.md, drf-simplejwt section: both settings blocks run; the jwkguard one passes
the system checks and its validator accepts the issuer's tokens (simplejwt's token_type too)."""

from __future__ import annotations

from django.test import override_settings

from jwkguard.testing import LocalIssuer
from jwkguard_django.checks import check_settings
from jwkguard_django.conf import get_validator

from ..core.test_migration_docs import blocks, run


def test_simplejwt_before_and_after_settings(local_issuer: LocalIssuer) -> None:
    before_source, after_source = blocks("## From djangorestframework-simplejwt")
    before = run(before_source, local_issuer)
    after = run(after_source, local_issuer)
    assert before["SIMPLE_JWT"]["JWK_URL"] == after["JWKGUARD"]["ISSUERS"][0]["JWKS_URI"]
    with override_settings(JWKGUARD=after["JWKGUARD"], REST_FRAMEWORK=after["REST_FRAMEWORK"]):
        assert check_settings() == []
        token = local_issuer.mint(subject="ada", token_type="access")
        assert get_validator().validate(token).subject == "ada"
