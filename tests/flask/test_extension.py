"""Setting up the extension: the three ways in, JWKGUARD_* config keys, several apps."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from typing import Any

import pytest
from flask import Flask

from jwkguard import ConfigurationError, Issuer, Validator
from jwkguard.testing import LocalIssuer
from jwkguard_flask import JWKGuard, current_claims
from jwkguard_flask._config import GuardState

from ..helpers import bearer
from .conftest import static_settings


def _add_me_route(app: Flask, guard: JWKGuard) -> None:
    @app.get("/me")
    @guard.require
    def me() -> dict[str, Any]:
        return {"sub": current_claims.subject, "iss": current_claims.issuer}


def _validator_for(issuer: LocalIssuer, **options: Any) -> Validator:
    return Validator(
        issuers=[issuer.issuer_config(jwks=issuer.jwks())], algorithms=[issuer.alg], **options
    )


def test_constructor_with_app_sets_it_up(blank_app: Flask, issuer: LocalIssuer) -> None:
    guard = JWKGuard(blank_app)
    _add_me_route(blank_app, guard)
    assert isinstance(blank_app.extensions["jwkguard"], GuardState)
    answer = blank_app.test_client().get("/me", headers=bearer(issuer.mint()))
    assert answer.status_code == 200
    assert answer.json == {"sub": "user-123", "iss": issuer.url}


def test_init_app_later_sets_up_the_app(blank_app: Flask, issuer: LocalIssuer) -> None:
    guard = JWKGuard()
    _add_me_route(blank_app, guard)
    guard.init_app(blank_app)
    assert blank_app.test_client().get("/me", headers=bearer(issuer.mint())).status_code == 200


def test_validator_argument_replaces_config(issuer: LocalIssuer) -> None:
    validator = _validator_for(issuer)
    app = Flask(__name__)
    guard = JWKGuard(app, validator=validator)
    _add_me_route(app, guard)
    assert app.extensions["jwkguard"].validator is validator
    assert app.test_client().get("/me", headers=bearer(issuer.mint())).status_code == 200


def test_init_app_validator_overrides_the_constructors(issuer: LocalIssuer) -> None:
    default, special = _validator_for(issuer), _validator_for(issuer)
    guard = JWKGuard(validator=default)
    first, second = Flask("first"), Flask("second")
    guard.init_app(first)
    guard.init_app(second, validator=special)
    assert first.extensions["jwkguard"].validator is default
    assert second.extensions["jwkguard"].validator is special


def test_validator_property_is_the_current_apps(issuer: LocalIssuer) -> None:
    validator = _validator_for(issuer)
    app = Flask(__name__)
    guard = JWKGuard(app, validator=validator)
    with app.app_context():
        assert guard.validator is validator


def test_extension_keeps_no_reference_to_the_app(settings: dict[str, Any]) -> None:
    guard = JWKGuard()
    app = Flask(__name__)
    app.config.update(settings)
    guard.init_app(app)
    alive = weakref.ref(app)
    del app
    gc.collect()
    assert alive() is None
    assert not any(isinstance(value, Flask) for value in vars(guard).values())


def test_factory_builds_two_apps_configured_differently(issuer: LocalIssuer) -> None:
    guard = JWKGuard()

    def create_app(config: dict[str, Any]) -> Flask:
        app = Flask(__name__)
        app.config.update(config, TESTING=True)
        guard.init_app(app)
        _add_me_route(app, guard)
        return app

    with LocalIssuer() as other:
        first = create_app(static_settings(issuer, JWKGUARD_REALM="first"))
        second = create_app(static_settings(other, JWKGUARD_REALM="second"))
        mine, theirs = bearer(issuer.mint()), bearer(other.mint())
        assert first.test_client().get("/me", headers=mine).json["iss"] == issuer.url
        assert second.test_client().get("/me", headers=theirs).json["iss"] == other.url
        refused = first.test_client().get("/me", headers=theirs)
        assert refused.status_code == 401
        assert refused.json["reason"] == "issuer_mismatch"
        assert refused.headers["WWW-Authenticate"].startswith('Bearer realm="first"')
        missing = second.test_client().get("/me")
        assert missing.headers["WWW-Authenticate"] == 'Bearer realm="second"'


def test_config_keys_mirror_core_options(blank_app: Flask, issuer: LocalIssuer) -> None:
    blank_app.config.update(JWKGUARD_LEEWAY=30, JWKGUARD_REQUIRED_SCOPES=["api"])
    guard = JWKGuard(blank_app)
    _add_me_route(blank_app, guard)
    client = blank_app.test_client()
    # 10 s past expiry is inside the 30 s leeway.
    late = issuer.mint(scopes=["api"], lifetime=-10)
    assert client.get("/me", headers=bearer(late)).status_code == 200
    unscoped = client.get("/me", headers=bearer(issuer.mint()))
    assert unscoped.status_code == 403
    assert blank_app.extensions["jwkguard"].validator.leeway == 30


def test_config_keys_are_case_insensitive(issuer: LocalIssuer) -> None:
    app = Flask(__name__)
    app.config.update(
        jwkguard_issuers=[{"ISSUER": issuer.url, "Audiences": [issuer.audience]}],
        JWKGUARD_Algorithms=[issuer.alg],
        JwkGuard_Realm="mixed",
    )
    app.config["jwkguard_issuers"][0]["jwks"] = issuer.jwks()
    guard = JWKGuard(app)
    _add_me_route(app, guard)
    client = app.test_client()
    assert client.get("/me", headers=bearer(issuer.mint())).status_code == 200
    assert client.get("/me").headers["WWW-Authenticate"] == 'Bearer realm="mixed"'


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"JWKGUARD_ISSUER": "https://id.example.com/"}, "JWKGUARD_ISSUER"),
        ({"JWKGUARD_LEEWAYS": 5}, "JWKGUARD_LEEWAYS"),
    ],
)
def test_unknown_config_key_is_refused_at_init_app(
    settings: dict[str, Any], extra: dict[str, Any], named: str
) -> None:
    app = Flask(__name__)
    app.config.update(settings, **extra)
    with pytest.raises(ConfigurationError, match=f"unknown config keys: {named}"):
        JWKGuard(app)


def test_unknown_issuer_key_is_refused_at_init_app(issuer: LocalIssuer) -> None:
    app = Flask(__name__)
    app.config.update(
        JWKGUARD_ISSUERS=[{"issuer": issuer.url, "audience": issuer.audience}],
        JWKGUARD_ALGORITHMS=["RS256"],
    )
    with pytest.raises(ConfigurationError, match=r"JWKGUARD_ISSUERS\[0\]\.audience"):
        JWKGuard(app)


def test_missing_configuration_is_refused_at_init_app() -> None:
    with pytest.raises(ConfigurationError, match="needs JWKGUARD_ISSUERS and JWKGUARD_ALGORITHMS"):
        JWKGuard(Flask(__name__))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"JWKGUARD_ALGORITHMS": ["none"]}, "'none' algorithm is never allowed"),
        ({"JWKGUARD_ALGORITHMS": "RS256"}, "algorithms must be a list"),
        ({"JWKGUARD_LEEWAY": -1}, "leeway must be a non-negative"),
        ({"JWKGUARD_REALM": ""}, "JWKGUARD_REALM must be a non-empty string"),
        ({"JWKGUARD_ALLOW_QUERY_TOKEN": "yes"}, "JWKGUARD_ALLOW_QUERY_TOKEN must be True or"),
        ({"JWKGUARD_EXEMPT": "api.health"}, "JWKGUARD_EXEMPT must be a list"),
        ({"JWKGUARD_EXEMPT_METHODS": [""]}, "JWKGUARD_EXEMPT_METHODS must be a list of non-empty"),
        ({"JWKGUARD_WARM_UP": 1}, "JWKGUARD_WARM_UP must be True or False"),
    ],
)
def test_bad_config_value_is_refused_at_init_app(
    settings: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    app = Flask(__name__)
    app.config.update(settings)
    app.config.update(extra)
    with pytest.raises(ConfigurationError, match=message):
        JWKGuard(app)


def test_validator_with_core_config_keys_is_refused(
    settings: dict[str, Any], issuer: LocalIssuer
) -> None:
    app = Flask(__name__)
    app.config.update(settings)
    with pytest.raises(ConfigurationError, match="JWKGUARD_ALGORITHMS, JWKGUARD_ISSUERS would be"):
        JWKGuard(app, validator=_validator_for(issuer))


def test_validator_keeps_adapter_config_keys(issuer: LocalIssuer) -> None:
    app = Flask(__name__)
    app.config.update(JWKGUARD_REALM="orders", JWKGUARD_EXEMPT_METHODS=["options", "head"])
    JWKGuard(app, validator=_validator_for(issuer))
    state = app.extensions["jwkguard"]
    assert (state.realm, state.exempt_methods) == ("orders", frozenset({"OPTIONS", "HEAD"}))


def test_something_that_is_not_a_validator_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"validator must be a jwkguard\.Validator"):
        JWKGuard(Flask(__name__), validator=Issuer)  # type: ignore[arg-type]


def test_second_init_app_on_the_same_app_is_refused(blank_app: Flask) -> None:
    JWKGuard(blank_app)
    with pytest.raises(ConfigurationError, match="already set up"):
        JWKGuard().init_app(blank_app)


def test_decorator_on_an_app_that_was_not_set_up_fails_clearly(issuer: LocalIssuer) -> None:
    app = Flask(__name__)
    app.testing = True
    _add_me_route(app, JWKGuard())
    with pytest.raises(RuntimeError, match=r"call guard\.init_app\(app\) first"):
        app.test_client().get("/me", headers=bearer(issuer.mint()))


def test_importing_without_flask_gives_an_install_hint() -> None:
    code = "import sys; sys.modules['flask'] = None; import jwkguard_flask"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "jwkguard_flask needs Flask: pip install 'jwkguard[flask]'" in result.stderr


def test_unknown_config_keys_name_the_closest_known_key() -> None:
    """A typo fails at start-up and says what was probably meant, as Django's check does."""
    app = Flask(__name__)
    app.config.update(
        JWKGUARD_ISSUERS=[
            {"issuer": "https://id.example.com/", "audiense": ["a"], "jwks": {"keys": []}}
        ],
        JWKGUARD_ALGORITHMS=["RS256"],
        JWKGUARD_ALOW_QUERY_TOKEN=True,
    )
    with pytest.raises(ConfigurationError) as caught:
        JWKGuard(app)
    message = str(caught.value)
    assert "JWKGUARD_ALOW_QUERY_TOKEN (did you mean JWKGUARD_ALLOW_QUERY_TOKEN?)" in message
    assert "ISSUERS[0].audiense (did you mean audiences?)" in message


@pytest.mark.parametrize("value", [True, "always"])
def test_allow_query_token_takes_the_shared_spellings(value: Any) -> None:
    app = Flask(__name__)
    with LocalIssuer() as issuer:
        app.config.update(static_settings(issuer), JWKGUARD_ALLOW_QUERY_TOKEN=value)
        guard = JWKGuard(app)

        @app.get("/q")
        @guard.require
        def query_view() -> dict[str, str]:
            return {"sub": current_claims.subject or ""}

        response = app.test_client().get("/q", query_string={"access_token": issuer.mint()})
    assert response.status_code == 200
