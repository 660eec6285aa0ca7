"""The JWKGUARD setting: read lazily, rebuilt on change, case-insensitive keys."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from jwkguard import ConfigurationError
from jwkguard.testing import LocalIssuer
from jwkguard_django.conf import get_state, get_validator, parse_options

from . import spy
from .conftest import jwkguard_settings


def test_validator_is_built_once_and_reused(issuer: LocalIssuer) -> None:
    assert get_validator() is get_validator()


def test_override_settings_rebuilds_the_validator(issuer: LocalIssuer, bearer: Any) -> None:
    before = get_validator()
    with LocalIssuer() as other, override_settings(JWKGUARD=jwkguard_settings(other)):
        assert get_validator() is not before
        ours = Client().get("/plain", headers=bearer())
        theirs = Client().get("/plain", headers={"Authorization": f"Bearer {other.mint()}"})
    assert ours.status_code == 401
    assert theirs.status_code == 200
    after = get_validator()
    assert after is not before
    assert Client().get("/plain", headers=bearer()).status_code == 200


def test_setting_changed_drops_the_cached_state(issuer: LocalIssuer) -> None:
    from django.conf import settings
    from django.core.signals import setting_changed

    state = get_state()
    setting_changed.send(sender=None, setting="JWKGUARD", value=settings.JWKGUARD, enter=True)
    assert get_state() is not state
    unrelated = get_state()
    setting_changed.send(sender=None, setting="DEBUG", value=False, enter=True)
    assert get_state() is unrelated


def test_keys_are_case_insensitive(issuer: LocalIssuer, bearer: Any) -> None:
    settings = {
        "issuers": [{"issuer": issuer.url, "audiences": [issuer.audience], "jwks": issuer.jwks()}],
        "algorithms": ["RS256"],
        "mode": "optional",
        "Exempt_Paths": ["/health"],
    }
    with override_settings(JWKGUARD=settings):
        assert get_state().options.mode == "optional"
        assert Client().get("/plain").status_code == 200
        assert Client().get("/plain", headers=bearer(subject="quin")).json()["sub"] == "quin"


def test_callables_may_be_given_as_dotted_paths(issuer: LocalIssuer, bearer: Any) -> None:
    settings = jwkguard_settings(issuer, ON_EVENT="tests.django.spy.record_event")
    with override_settings(JWKGUARD=settings):
        assert get_validator().on_event is spy.record_event


def test_invalid_settings_raise_improperly_configured_on_use(issuer: LocalIssuer) -> None:
    with override_settings(JWKGUARD={"ISSUERS": []}), pytest.raises(ImproperlyConfigured):
        get_state()
    with override_settings(JWKGUARD="nope"), pytest.raises(ImproperlyConfigured, match="dict"):
        get_state()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"MODE": "strict"}, "MODE must be one of"),
        ({"EXEMPT_PATHS": "/health"}, "EXEMPT_PATHS must be a list"),
        ({"EXEMPT_PATHS": ["health"]}, "starting with '/'"),
        ({"REALM": ""}, "REALM"),
        ({"USER_LOADER": 42}, "USER_LOADER must be a callable"),
        ({"ALLOW_QUERY_TOKEN": "yes"}, "ALLOW_QUERY_TOKEN"),
    ],
)
def test_adapter_settings_are_checked(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_options(settings)


def test_exempt_paths_match_exactly_or_by_prefix_with_a_star() -> None:
    options = parse_options({"EXEMPT_PATHS": ["/health", "/static/*"]})
    assert options.is_exempt("/health")
    assert not options.is_exempt("/health/deep")
    assert not options.is_exempt("/healthz")
    assert options.is_exempt("/static/app.css")
    assert not options.is_exempt("/staticky")


def test_realm_is_used_in_challenges(issuer: LocalIssuer) -> None:
    with override_settings(JWKGUARD=jwkguard_settings(issuer, REALM="orders")):
        response = Client().get("/plain")
    assert response["WWW-Authenticate"] == 'Bearer realm="orders"'


def test_exempt_methods_default_to_options_and_can_be_changed() -> None:
    assert parse_options({}).is_exempt("/orders", "OPTIONS")
    assert not parse_options({"EXEMPT_METHODS": []}).is_exempt("/orders", "OPTIONS")
    assert not parse_options({}).is_exempt("/orders", "GET")


def _remote_settings(issuer: LocalIssuer) -> dict[str, Any]:
    remote = {"ISSUER": issuer.url, "AUDIENCES": [issuer.audience], "JWKS_URI": issuer.jwks_uri}
    return {**jwkguard_settings(issuer), "ISSUERS": [remote]}


def test_warm_up_fetches_keys_when_django_starts() -> None:
    from jwkguard_django.apps import warm_up

    with LocalIssuer() as issuer:
        settings = {**_remote_settings(issuer), "WARM_UP": True}
        with override_settings(JWKGUARD=settings):
            warm_up()
        assert issuer.requests["/jwks.json"] == 1


def test_require_keys_stops_start_up_without_keys() -> None:
    from jwkguard_django.apps import warm_up

    with LocalIssuer() as issuer:
        issuer.fail_with(503)
        settings = {**_remote_settings(issuer), "REQUIRE_KEYS": True}
        with (
            override_settings(JWKGUARD=settings),
            pytest.raises(ImproperlyConfigured, match="keys"),
        ):
            warm_up()
