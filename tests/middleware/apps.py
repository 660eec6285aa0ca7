"""Apps of frameworks jwkguard has no adapter for, each behind the generic middleware.

Every app answers the same routes, so one set of tests attacks all of them:
``GET /whoami`` (the subject, or ``anonymous``), ``GET /health`` and ``GET /health/live``
(public), ``GET /admin`` (protected), ``OPTIONS /whoami`` (the framework's own answer),
``GET /started`` (whether the lifespan start-up ran, ASGI only) and ``/ws`` (a WebSocket that
sends the subject, ASGI only).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from jwkguard import Claims, Validator
from jwkguard import asgi as jwk_asgi
from jwkguard import wsgi as jwk_wsgi

EXEMPT = ["/health", "/health/"]


def _subject(claims: Claims | None) -> str:
    return claims.subject or "" if claims is not None else "anonymous"


# -- ASGI ------------------------------------------------------------------------------------


def litestar_app(validator: Validator, **options: Any) -> Any:
    from litestar import Litestar, Request, WebSocket, get, websocket
    from litestar.config.cors import CORSConfig

    started: dict[str, bool] = {"yes": False}

    def on_startup() -> None:
        started["yes"] = True

    @get("/whoami")
    async def whoami(request: Request[Any, Any, Any]) -> dict[str, str]:
        return {"subject": _subject(request.scope.get("jwkguard.claims"))}  # type: ignore[arg-type]

    @get(["/health", "/health/live"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @get("/admin")
    async def admin() -> dict[str, str]:
        return {"admin": "yes"}

    @get("/started")
    async def was_started() -> dict[str, bool]:
        return {"started": started["yes"]}

    @websocket("/ws")
    async def ws(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        await socket.send_text(_subject(socket.scope.get("jwkguard.claims")))  # type: ignore[arg-type]
        await socket.close()

    app = Litestar(
        route_handlers=[whoami, health, admin, was_started, ws],
        on_startup=[on_startup],
        cors_config=CORSConfig(allow_origins=["https://app.example.com"]),
    )
    return jwk_asgi.JWKGuardMiddleware(app, validator, exempt_paths=EXEMPT, **options)


def quart_app(validator: Validator, **options: Any) -> Any:
    from quart import Quart, request, websocket

    app = Quart("guarded")
    started: dict[str, bool] = {"yes": False}

    @app.before_serving
    async def on_startup() -> None:
        started["yes"] = True

    @app.get("/whoami")
    async def whoami() -> dict[str, str]:
        return {"subject": _subject(request.scope.get("jwkguard.claims"))}

    @app.route("/whoami", methods=["OPTIONS"])
    async def whoami_options() -> tuple[str, int, dict[str, str]]:
        return "", 204, {"Allow": "GET, OPTIONS"}

    @app.get("/health")
    @app.get("/health/live")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/admin")
    async def admin() -> dict[str, str]:
        return {"admin": "yes"}

    @app.get("/started")
    async def was_started() -> dict[str, bool]:
        return {"started": started["yes"]}

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await websocket.send(_subject(websocket.scope.get("jwkguard.claims")))

    app.asgi_app = jwk_asgi.JWKGuardMiddleware(  # type: ignore[method-assign]
        app.asgi_app, validator, exempt_paths=EXEMPT, **options
    )
    return app


def raw_asgi_app(validator: Validator, **options: Any) -> Any:
    started: dict[str, bool] = {"yes": False}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    started["yes"] = True
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            text = _subject(scope.get("jwkguard.claims"))
            await send({"type": "websocket.send", "text": text})
            await send({"type": "websocket.close", "code": 1000})
            return
        path = scope["path"]
        if scope["method"] == "OPTIONS":
            status, body = 204, b""
        elif path == "/whoami":
            status, body = 200, json.dumps({"subject": _subject(scope.get("jwkguard.claims"))})
        elif path == "/started":
            status, body = 200, json.dumps({"started": started["yes"]})
        elif path in ("/health", "/health/live", "/admin"):
            status, body = 200, json.dumps({"path": path})
        else:
            status, body = 404, json.dumps({"path": path})
        data = body.encode() if isinstance(body, str) else body
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    return jwk_asgi.JWKGuardMiddleware(app, validator, exempt_paths=EXEMPT, **options)


# Spellings of a protected path that start inside the exempt ``/health`` subtree; the server
# (not the client) decodes and resolves them, so none may be let through without a token.
STRETCHED_EXEMPTIONS = (
    "/health/../admin",
    "/health/./../admin",
    "/health;x=1/../admin",
    "//health/../admin",
    # Percent-encoded dot segments and slashes: the server decodes them into the path.
    "/health/..%2fadmin",
    "/health%2F..%2Fadmin",
    "/health/%2e%2e/admin",
    "/health/%2E%2E%2Fadmin",
    "/health/..;/admin",
    "/health//..//admin",
    "/health/live%00",
    "/health/live%0a",
)


ASGI_APPS: dict[str, Callable[..., Any]] = {
    "litestar": litestar_app,
    "quart": quart_app,
    "raw-asgi": raw_asgi_app,
}


# -- WSGI ------------------------------------------------------------------------------------


def falcon_app(validator: Validator, **options: Any) -> Any:
    import falcon

    class WhoAmI:
        def on_get(self, req: Any, resp: Any) -> None:
            resp.media = {"subject": _subject(req.env.get("jwkguard.claims"))}

        def on_options(self, req: Any, resp: Any) -> None:
            resp.status = falcon.HTTP_204

    class Plain:
        def on_get(self, req: Any, resp: Any) -> None:
            resp.media = {"path": req.path}

    app = falcon.App()
    app.add_route("/whoami", WhoAmI())
    for path in ("/health", "/health/live", "/admin"):
        app.add_route(path, Plain())
    return jwk_wsgi.JWKGuardMiddleware(app, validator, exempt_paths=EXEMPT, **options)


def bottle_app(validator: Validator, **options: Any) -> Any:
    import bottle

    app = bottle.Bottle()

    @app.get("/whoami")
    def whoami() -> dict[str, str]:
        return {"subject": _subject(bottle.request.environ.get("jwkguard.claims"))}

    @app.route("/whoami", method="OPTIONS")
    def whoami_options() -> str:
        bottle.response.status = 204
        return ""

    @app.get("/health")
    @app.get("/health/live")
    @app.get("/admin")
    def plain() -> dict[str, str]:
        return {"path": bottle.request.path}

    return jwk_wsgi.JWKGuardMiddleware(app, validator, exempt_paths=EXEMPT, **options)


def raw_wsgi_app(validator: Validator, **options: Any) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ["REQUEST_METHOD"] == "OPTIONS":
            start_response("204 No Content", [])
            return []
        if path == "/whoami":
            body = json.dumps({"subject": _subject(environ.get("jwkguard.claims"))})
        else:
            body = json.dumps({"path": path})
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body.encode()]

    return jwk_wsgi.JWKGuardMiddleware(app, validator, exempt_paths=EXEMPT, **options)


WSGI_APPS: dict[str, Callable[..., Any]] = {
    "falcon": falcon_app,
    "bottle": bottle_app,
    "raw-wsgi": raw_wsgi_app,
}
