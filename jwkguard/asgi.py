"""Protect any ASGI 3 application (Litestar, Quart, Starlette, raw ASGI, ...).

Example:
    from jwkguard.asgi import JWKGuardMiddleware

    app = JWKGuardMiddleware(app, validator, exempt_paths=["/health"])

The verified claims are in ``scope["jwkguard.claims"]`` (a :class:`jwkguard.Claims`; None on
an optional request without a token). Refusals are the RFC 6750 answers every jwkguard
adapter gives (JSON body, ``WWW-Authenticate``). A WebSocket handshake without a valid token
is closed with 1008 (1013 when no signing keys can be had). ``lifespan`` passes through
untouched; any other scope type, which jwkguard cannot check, raises ``ValueError`` (fails
closed, as the ASGI specification asks of an application). No web framework is imported.

With ``resource=`` (RFC 9728), every challenge carries ``resource_metadata`` and the middleware
answers ``GET`` at the resource's well-known path (``/.well-known/oauth-protected-resource``,
then the resource's path) with the metadata document, without a token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import KeysUnavailable, TokenError
from .pipeline._bearer import ErrorResponse
from .pipeline._exemptions import DEFAULT_EXEMPT_METHODS
from .pipeline._middleware import CLAIMS_KEY, GuardedApp, GuardOptions
from .pipeline._pipeline import Decision
from .pipeline._request_view import view_from_asgi
from .pipeline._resource import ResourceMetadata

__all__ = [
    "CLAIMS_KEY",
    "DEFAULT_EXEMPT_METHODS",
    "GuardOptions",
    "GuardedApp",
    "JWKGuardMiddleware",
    "close_handshake",
    "close_reason",
    "send_error",
    "send_metadata",
    "unknown_scope",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WS_POLICY_VIOLATION = 1008
WS_TRY_AGAIN_LATER = 1013
# RFC 6455 section 5.5: a close frame's reason fits in 123 bytes.
_MAX_CLOSE_REASON = 123


def close_reason(exc: TokenError | None) -> tuple[int, str]:
    """WebSocket close code and reason: 1008 for a refused token, 1013 for a key outage."""
    if exc is None:
        return WS_POLICY_VIOLATION, "An access token is required"
    code = WS_TRY_AGAIN_LATER if isinstance(exc, KeysUnavailable) else WS_POLICY_VIOLATION
    reason = exc.description.encode()[:_MAX_CLOSE_REASON].decode("utf-8", "ignore")
    return code, reason


class JWKGuardMiddleware(GuardedApp[ASGIApp]):
    """ASGI middleware: every HTTP request and WebSocket handshake needs a valid token.

    ``JWKGuardMiddleware(app, validator, *, exempt_paths=(), exempt_methods=("OPTIONS",),
    optional=False, realm="api", allow_query="never", websocket_subprotocol=None,
    sender=None, introspector=None, resource=None, pipeline=None, **route)``: the options are
    described on :class:`jwkguard.asgi.GuardedApp`, ``route`` (``scopes``, ``introspect``,
    ...) on :class:`jwkguard.pipeline.RouteOptions`.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        resource = self.resource
        if (
            resource is not None
            and kind == "http"
            and resource.serves(scope["path"])
            and scope.get("method") in ("GET", "HEAD")
        ):
            await send_metadata(send, resource, head=scope["method"] == "HEAD")
            return
        if kind not in ("http", "websocket"):
            if kind != "lifespan":
                raise unknown_scope(kind)
            await self.app(scope, receive, send)
            return
        if self.exemptions(scope.get("method", "GET") if kind == "http" else "", scope["path"]):
            await self.app(scope, receive, send)
            return
        decision = await self.pipeline.arun(view_from_asgi(scope), self.policy)
        if decision.response is None:
            self.attach(scope, decision)
            await self.app(scope, receive, send)
        elif kind == "websocket":
            await self.refuse_websocket(scope, receive, send, decision)
        else:
            await send_error(send, decision.response, head=scope["method"] == "HEAD")

    def attach(self, scope: Scope, decision: Decision) -> None:
        """Put the verified claims (None: optional, no token) where the app reads them."""
        scope[CLAIMS_KEY] = decision.claims

    @staticmethod
    async def refuse_websocket(
        scope: Scope, receive: Receive, send: Send, decision: Decision
    ) -> None:
        """Close the handshake: 1008, or 1013 when no signing keys can be had.

        The same as the FastAPI dependency does, so a client sees one behaviour; servers
        answer a handshake closed before it was accepted with HTTP 403.
        """
        await close_handshake(receive, send, *close_reason(decision.error))


async def close_handshake(receive: Receive, send: Send, code: int, reason: str) -> None:
    """Close a WebSocket handshake before accepting it (servers answer it with HTTP 403)."""
    if (await receive())["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": code, "reason": reason})


def unknown_scope(kind: object) -> ValueError:
    """The error for an ASGI scope type jwkguard cannot check: it is refused, never passed on
    (the ASGI specification asks an application to raise for a type it does not know)."""
    return ValueError(f"jwkguard cannot check an ASGI {kind!r} scope: refused")


async def send_metadata(send: Send, resource: ResourceMetadata, *, head: bool = False) -> None:
    """Send the RFC 9728 metadata document (200, JSON, cacheable)."""
    body = resource.body_bytes()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in resource.wire_headers(body)
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else body})


async def send_error(
    send: Send, response: ErrorResponse, *, prefix: str = "http.response", head: bool = False
) -> None:
    """Send ``response`` as an ASGI HTTP answer (JSON body, challenge, ``no-store``); to a
    ``HEAD`` request (``head``), the same headers without the body."""
    body = response.body_bytes()
    await send(
        {
            "type": f"{prefix}.start",
            "status": response.status_code,
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in response.wire_headers(body)
            ],
        }
    )
    await send({"type": f"{prefix}.body", "body": b"" if head else body})
