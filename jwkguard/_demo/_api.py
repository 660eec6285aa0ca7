"""The orders API of ``jwkguard demo``: a small but realistic FastAPI application.

It ships in the wheel so that the demo runs from ``pip install 'jwkguard[demo]'``;
``examples/fastapi_app.py`` re-exports it for ``uvicorn examples.fastapi_app:app``. It uses only
the public names of ``jwkguard`` and ``jwkguard_fastapi``, as an application would.

Routes (``create_app(validator)`` builds them; the signature is stable):

    GET  /                 public: service name and links
    GET  /health           public: liveness
    GET  /catalog          optional auth: public items, plus a greeting when a token is sent
    GET  /me               any valid token: subject, scopes, key id
    GET  /orders           scope ``orders:read``: the orders
    POST /orders           scope ``orders:write``: create an order ({"item": str, "quantity": int})
    WS   /ws/orders        scope ``orders:read``: a feed of order events; the token comes in the
                           Authorization header, as the subprotocols ``["bearer", token]``, or
                           as ``?access_token=`` (WebSocket handshakes only)
    GET  /docs             Swagger UI, with the Authorize button; its scripts and styles come
                           from the installed ``swagger-ui-py`` package (no CDN, works offline)

Run it against any issuer::

    JWKGUARD_ISSUER=https://id.example.com/ JWKGUARD_AUDIENCES=https://api.example.com \\
    JWKGUARD_ALGORITHMS=RS256 uvicorn examples.fastapi_app:app

Any ``JWKGUARD_*`` setting applies (``jwkguard.validator_from_env``, docs/configuration.md):
``JWKGUARD_JWKS_URI`` is optional (default: the issuer's discovery document);
``JWKGUARD_AUDIENCES`` and ``JWKGUARD_ALGORITHMS`` take comma-separated lists or JSON.
"""

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Security, WebSocket, WebSocketDisconnect
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

import jwkguard
from jwkguard import Claims, Validator
from jwkguard_fastapi import CurrentClaims, JWTBearer, OptionalClaims, install, lifespan

__all__ = ["NewOrder", "Order", "create_app", "swagger_assets", "validator_from_env"]

READ = "orders:read"
WRITE = "orders:write"


class NewOrder(BaseModel):
    """An order to create."""

    item: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=1000)


class Order(NewOrder):
    """A stored order."""

    id: int
    owner: str


def create_app(validator: Validator) -> FastAPI:
    """The example API, protected by ``validator``."""
    auth = JWTBearer(
        validator,
        allow_query="websocket",
        websocket_subprotocol="bearer",
    )
    # No `from __future__ import annotations` in this module: FastAPI reads these at run time.
    Reader = Annotated[Claims, Security(auth, scopes=[READ])]
    Writer = Annotated[Claims, Security(auth, scopes=[WRITE])]

    app = FastAPI(
        title="Orders API",
        description="A jwkguard example: public, optional-auth and scoped routes, a WebSocket.",
        version="1.0",
        lifespan=lifespan(validator),
        docs_url=None if swagger_assets() else "/docs",
    )
    install(app, validator)
    _offline_docs(app)
    orders: list[Order] = [
        Order(id=1, item="coffee beans", quantity=2, owner="user-123"),
        Order(id=2, item="filter papers", quantity=1, owner="user-456"),
    ]

    @app.get("/", tags=["public"])
    async def index() -> dict[str, str]:
        return {"service": "orders", "docs": "/docs"}

    @app.get("/health", tags=["public"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/catalog", tags=["public"])
    async def catalog(claims: OptionalClaims) -> dict[str, Any]:
        items = ["coffee beans", "filter papers", "kettle"]
        if claims is None:
            return {"items": items}
        return {"items": items, "greeting": f"welcome back, {claims.subject}"}

    @app.get("/me", tags=["account"])
    async def me(claims: CurrentClaims) -> dict[str, Any]:
        return {
            "subject": claims.subject,
            "scopes": sorted(claims.scopes),
            "key_id": claims.key_id,
        }

    @app.get("/orders", tags=["orders"])
    async def list_orders(claims: Reader) -> list[Order]:
        return orders

    @app.post("/orders", status_code=201, tags=["orders"])
    async def create_order(order: NewOrder, claims: Writer) -> Order:
        created = Order(id=len(orders) + 1, owner=claims.subject or "", **order.model_dump())
        orders.append(created)
        return created

    @app.websocket("/ws/orders")
    async def order_feed(websocket: WebSocket, claims: Reader) -> None:
        await websocket.accept(subprotocol=auth.subprotocol(websocket))
        await websocket.send_json({"event": "hello", "subject": claims.subject})
        try:
            while True:
                message = await websocket.receive_text()
                if message == "list":
                    await websocket.send_json(
                        {"event": "orders", "orders": [o.model_dump() for o in orders]}
                    )
                else:
                    await websocket.send_json({"event": "unknown", "message": message[:100]})
        except WebSocketDisconnect:
            return

    return app


def swagger_assets() -> Path | None:
    """Swagger UI's scripts and styles from the installed ``swagger-ui-py``, if it is there.

    Found without importing the package (its ``__init__`` loads template engines we do not use).
    """
    spec = importlib.util.find_spec("swagger_ui")
    for location in (spec.submodule_search_locations or []) if spec else []:
        static = Path(location) / "static"
        if (static / "swagger-ui-bundle.js").is_file():
            return static
    return None


def _offline_docs(app: FastAPI) -> None:
    """``/docs`` served with Swagger UI's files from this machine, not from a CDN."""
    assets = swagger_assets()
    if assets is None:  # FastAPI's own /docs (assets from a CDN) stays in place
        return
    app.mount("/docs/assets", StaticFiles(directory=assets), name="swagger-ui-assets")
    redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
            oauth2_redirect_url=redirect,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


def validator_from_env(environ: Mapping[str, str] = os.environ) -> Validator:
    """A validator from ``JWKGUARD_*`` variables: ``JWKGUARD_ISSUER``, ``JWKGUARD_AUDIENCES``,
    ``JWKGUARD_ALGORITHMS``, the optional ``JWKGUARD_JWKS_URI`` and any other setting."""
    return jwkguard.validator_from_env(environ)
