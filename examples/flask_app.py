"""A small Flask API protected by jwkguard.

Public routes, read and write scopes, optional authentication, an async view, and an admin
blueprint protected as a whole.

Against a local test issuer started in-process (``GET /demo/token`` mints a token)::

    flask --app examples/flask_app run
    TOKEN=$(curl -s 'localhost:5000/demo/token?scope=orders:read' | jq -r .access_token)
    curl -H "Authorization: Bearer $TOKEN" localhost:5000/orders

Against a real issuer, from environment variables::

    JWKGUARD_ISSUER=https://id.example.com/ JWKGUARD_AUDIENCES=https://api.example.com \\
    JWKGUARD_ALGORITHMS=RS256,ES256 flask --app examples/flask_app run

``JWKGUARD_JWKS_URI`` names the key set; without it, OpenID discovery finds it. Every
``JWKGUARD_*`` config key can be set from the environment (``jwkguard_flask.config_from_env``),
e.g. ``JWKGUARD_LEEWAY=5``; a misspelt variable stops the app with "did you mean".
"""

from __future__ import annotations

import atexit
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, request

from jwkguard.testing import LocalIssuer
from jwkguard_flask import JWKGuard, config_from_env, current_claims, get_claims

guard = JWKGuard()

api = Blueprint("api", __name__)
admin = guard.protect(
    Blueprint("admin", __name__, url_prefix="/admin"), scopes=["admin"], exempt=["admin.status"]
)

ORDERS = [{"id": 1, "item": "tea"}, {"id": 2, "item": "coffee"}]


@api.get("/")
def index() -> dict[str, Any]:
    """Public."""
    return {"service": "orders"}


@api.get("/health")
def health() -> dict[str, str]:
    """Public, for load balancers."""
    return {"status": "ok"}


@api.get("/me")
@guard.require
def me() -> dict[str, Any]:
    """Any valid token."""
    return {"sub": current_claims.subject, "scopes": sorted(current_claims.scopes)}


@api.get("/orders")
@guard.require(scopes=["orders:read"])
def list_orders() -> dict[str, Any]:
    """Needs ``orders:read``."""
    return {"sub": current_claims.subject, "orders": ORDERS}


@api.get("/orders/<int:order_id>")
@guard.require(scopes=["orders:read"])
def get_order(order_id: int) -> tuple[dict[str, Any], int]:
    """Needs ``orders:read``; the URL parameter reaches the view as usual."""
    found = [order for order in ORDERS if order["id"] == order_id]
    return (found[0], 200) if found else ({"error": "not_found"}, 404)


@api.post("/orders")
@guard.require(scopes=["orders:write"])
def create_order() -> tuple[dict[str, Any], int]:
    """Needs ``orders:write``."""
    body = request.get_json(silent=True) or {}
    return {"created": {"item": body.get("item")}, "by": current_claims.subject}, 201


@api.get("/greeting")
@guard.require(optional=True)
def greeting() -> dict[str, str]:
    """Anyone; a token, if sent, must be valid."""
    claims = get_claims()
    return {"greeting": f"hello, {claims.subject if claims else 'stranger'}"}


@api.get("/async/me")
@guard.require
async def async_me() -> dict[str, Any]:
    """An ``async def`` view (Flask's ``async`` extra)."""
    return {"sub": current_claims.subject, "async": True}


@admin.get("/stats")
def stats() -> dict[str, Any]:
    """Every admin route needs the ``admin`` scope, through ``guard.protect``."""
    return {"orders": len(ORDERS), "by": current_claims.subject}


@admin.get("/status")
def status() -> dict[str, str]:
    """Exempt from the blueprint's protection."""
    return {"status": "ok"}


def _start_demo_issuer(app: Flask) -> None:
    """Serve a local issuer in this process and a route that mints its tokens."""
    issuer = LocalIssuer().start()
    atexit.register(issuer.stop)
    app.config.update(
        JWKGUARD_ISSUERS=[
            {"issuer": issuer.url, "audiences": [issuer.audience], "jwks_uri": issuer.jwks_uri}
        ],
        JWKGUARD_ALGORITHMS=[issuer.alg],
    )

    @app.get("/demo/token")
    def demo_token() -> dict[str, Any]:
        scopes = request.args.get("scope", "orders:read").split()
        return {"access_token": issuer.mint(scopes=scopes), "token_type": "Bearer"}

    app.logger.warning("demo mode: tokens from %s; GET /demo/token?scope=...", issuer.url)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The application factory (``flask --app examples/flask_app run`` calls it).

    Args:
        config: Config keys to set (tests pass ``JWKGUARD_*`` keys here). Without
            ``JWKGUARD_ISSUERS`` (from here or from ``JWKGUARD_*`` environment variables), a
            local demo issuer is started.
    """
    app = Flask(__name__)
    app.config.update(config_from_env())  # JWKGUARD_* environment variables
    app.config.update(config or {})
    if "JWKGUARD_ISSUERS" not in app.config:
        _start_demo_issuer(app)
    guard.init_app(app)
    app.register_blueprint(api)
    app.register_blueprint(admin)
    return app
