"""``protect``: a whole blueprint or app behind a token, with exemptions and CORS preflight."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Blueprint, Flask

from jwkguard import ConfigurationError
from jwkguard.testing import LocalIssuer
from jwkguard_flask import JWKGuard, current_claims

from ..helpers import bearer
from .test_require import CountingValidator

PREFLIGHT = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}


def _api_blueprint(guard: JWKGuard, **protect: Any) -> Blueprint:
    api = guard.protect(Blueprint("api", __name__, url_prefix="/api"), **protect)

    @api.get("/orders")
    def orders() -> dict[str, Any]:
        return {"sub": current_claims.subject}

    @api.get("/health")
    def health() -> str:
        return "ok"

    @api.get("/version")
    @guard.exempt
    def version() -> str:
        return "1.0"

    return api


def _app(settings: dict[str, Any], guard: JWKGuard, **protect: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(settings, TESTING=True)
    guard.init_app(app)
    app.register_blueprint(_api_blueprint(guard, **protect))

    @app.get("/public")
    def public() -> str:
        return "open"

    return app


def test_blueprint_routes_need_a_valid_token(settings: dict[str, Any], issuer: LocalIssuer) -> None:
    client = _app(settings, JWKGuard()).test_client()
    assert client.get("/api/orders").status_code == 401
    assert client.get("/api/orders", headers=bearer("abc.def.ghi")).status_code == 401
    answer = client.get("/api/orders", headers=bearer(issuer.mint(subject="ada")))
    assert answer.json == {"sub": "ada"}


def test_routes_outside_the_blueprint_stay_open(settings: dict[str, Any]) -> None:
    client = _app(settings, JWKGuard()).test_client()
    assert client.get("/public").text == "open"


def test_blueprint_scopes_apply_to_each_route(
    settings: dict[str, Any], issuer: LocalIssuer
) -> None:
    client = _app(settings, JWKGuard(), scopes=["api"]).test_client()
    assert client.get("/api/orders", headers=bearer(issuer.mint())).status_code == 403
    scoped = bearer(issuer.mint(scopes=["api"]))
    assert client.get("/api/orders", headers=scoped).status_code == 200


@pytest.mark.parametrize(
    "exempt",
    [
        pytest.param({"exempt": ["api.health"]}, id="endpoint-name"),
        pytest.param({"exempt": "view"}, id="view-function"),
        pytest.param({}, id="config-key"),
    ],
)
def test_exempt_routes_stay_open(settings: dict[str, Any], exempt: dict[str, Any]) -> None:
    guard = JWKGuard()
    if not exempt:
        settings = {**settings, "JWKGUARD_EXEMPT": ["api.health"]}
    app = Flask(__name__)
    app.config.update(settings)
    guard.init_app(app)
    api = Blueprint("api", __name__, url_prefix="/api")

    @api.get("/health")
    def health() -> str:
        return "ok"

    @api.get("/orders")
    def orders() -> str:
        return "never"

    guard.protect(api, **({"exempt": [health]} if exempt.get("exempt") == "view" else exempt))
    app.register_blueprint(api)
    client = app.test_client()
    assert client.get("/api/health").text == "ok"
    assert client.get("/api/orders").status_code == 401


def test_exempt_decorator_leaves_a_view_open(settings: dict[str, Any]) -> None:
    client = _app(settings, JWKGuard()).test_client()
    assert client.get("/api/version").text == "1.0"


def test_exempt_view_function_matches_through_other_decorators(settings: dict[str, Any]) -> None:
    guard = JWKGuard()
    app = Flask(__name__)
    app.config.update(settings)
    guard.init_app(app)

    def health() -> str:
        return "ok"

    app.get("/health")(guard.require(optional=True)(health))
    guard.protect(app, exempt=[health])
    assert app.test_client().get("/health").text == "ok"


def test_cors_preflight_is_exempt_by_default(settings: dict[str, Any]) -> None:
    client = _app(settings, JWKGuard()).test_client()
    answer = client.options("/api/orders", headers=PREFLIGHT)
    assert answer.status_code == 200
    assert "GET" in answer.headers["Allow"]


def test_preflight_exemption_can_be_switched_off(
    settings: dict[str, Any], issuer: LocalIssuer
) -> None:
    client = _app(settings, JWKGuard(), exempt_methods=[]).test_client()
    assert client.options("/api/orders", headers=PREFLIGHT).status_code == 401
    app = _app({**settings, "JWKGUARD_EXEMPT_METHODS": []}, JWKGuard())
    assert app.test_client().options("/api/orders", headers=PREFLIGHT).status_code == 401


def test_preflight_on_a_required_route_is_answered_by_flask(
    blank_app: Flask, issuer: LocalIssuer
) -> None:
    guard = JWKGuard(blank_app)

    @blank_app.get("/orders")
    @guard.require(scopes=["orders:read"])
    def orders() -> str:
        return "never"

    answer = blank_app.test_client().options("/orders", headers=PREFLIGHT)
    assert answer.status_code == 200
    assert answer.text == ""


def test_whole_app_protection_challenges_unknown_routes(
    settings: dict[str, Any], issuer: LocalIssuer
) -> None:
    app = Flask(__name__)
    app.config.update(settings)
    guard = JWKGuard(app)

    @app.get("/orders")
    def orders() -> str:
        return current_claims.subject or ""

    assert guard.protect(app) is app
    client = app.test_client()
    token = bearer(issuer.mint())
    assert client.get("/orders").status_code == 401
    assert client.get("/orders", headers=token).text == "user-123"
    # Without a token nothing tells routes apart; with one, Flask's own 404 answers.
    assert client.get("/nowhere").status_code == 401
    assert client.get("/nowhere", headers=token).status_code == 404


def test_optional_protection_lets_anonymous_requests_through(
    settings: dict[str, Any], issuer: LocalIssuer
) -> None:
    client = _app(settings, JWKGuard(), optional=True).test_client()
    assert client.get("/api/health").text == "ok"
    assert client.get("/api/health", headers=bearer("abc.def.ghi")).status_code == 401


def test_protect_and_require_validate_once(settings: dict[str, Any], issuer: LocalIssuer) -> None:
    validator = CountingValidator(
        issuers=[issuer.issuer_config(jwks=issuer.jwks())], algorithms=[issuer.alg]
    )
    app = Flask(__name__)
    guard = JWKGuard(app, validator=validator)
    api = guard.protect(Blueprint("api", __name__), optional=True)

    @api.get("/write")
    @guard.require(scopes=["orders:write"])
    def write() -> str:
        return "written"

    app.register_blueprint(api)
    client = app.test_client()
    assert client.get("/write").status_code == 401
    assert client.get("/write", headers=bearer(issuer.mint())).status_code == 403
    writer = bearer(issuer.mint(scopes=["orders:write"]))
    assert client.get("/write", headers=writer).text == "written"
    assert validator.calls == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"exempt": "api.health"}, "exempt must be a list"),
        ({"exempt": [42]}, "exempt must be a list"),
        ({"exempt_methods": "OPTIONS"}, "exempt_methods must be a list"),
        ({"scopes": "api"}, "scopes must be a list"),
    ],
)
def test_bad_protect_arguments_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        JWKGuard().protect(Blueprint("api", __name__), **options)


def test_static_files_are_protected_under_an_app_unless_exempt(settings: dict[str, Any]) -> None:
    answers = []
    for exempt in ([], ["static"]):
        app = Flask(__name__)
        app.config.update(settings)
        JWKGuard(app).protect(app, exempt=exempt)
        answers.append(app.test_client().get("/static/missing.css").status_code)
    assert answers == [401, 404]
