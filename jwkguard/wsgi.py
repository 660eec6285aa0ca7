"""Protect any WSGI application (Falcon, Pyramid, Bottle, raw WSGI, ...).

Example:
    from jwkguard.wsgi import JWKGuardMiddleware

    app = JWKGuardMiddleware(wsgi_app, validator, exempt_paths=["/health"])

The verified claims are in ``environ["jwkguard.claims"]`` (a :class:`jwkguard.Claims`; None
on an optional request without a token). Refusals are the RFC 6750 answers every jwkguard
adapter gives (JSON body, ``WWW-Authenticate``). No web framework is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from http import HTTPStatus
from typing import Any

from ._bearer import ErrorResponse
from ._exemptions import DEFAULT_EXEMPT_METHODS
from ._introspection import Introspector
from ._middleware import CLAIMS_KEY, MiddlewareCore
from ._pipeline import QueryPolicy, RequestPipeline
from ._request_view import view_from_environ
from ._sender import SenderConstraints
from ._validator import Validator

__all__ = ["CLAIMS_KEY", "DEFAULT_EXEMPT_METHODS", "JWKGuardMiddleware", "refuse"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class JWKGuardMiddleware:
    """WSGI middleware: every request needs a valid token, except the exempt ones.

    Args:
        app: The WSGI application to protect.
        validator: The validator (or give ``pipeline``).
        exempt_paths: Path prefixes served without a token, on whole segments (``"/health"``
            covers ``/health/live``, not ``/healthz``); only canonical spellings are exempt.
        exempt_methods: Methods served without a token; default ``OPTIONS`` (CORS preflight).
        optional: Let requests without a token through with ``None`` claims; a bad token is
            still refused.
        scopes: Scopes every request's token must grant.
        realm: The ``realm`` of the ``WWW-Authenticate`` challenge.
        allow_query: ``"always"`` accepts ``?access_token=`` (RFC 6750 section 2.3 advises
            against it); default ``"never"``.
        sender: DPoP and certificate binding; bound tokens are refused by default.
        introspector: Introspection for opaque tokens, and for every token with
            ``introspect=True`` (RFC 7662).
        introspect: Ask the introspector about every token (hybrid mode).
        pipeline: A ready :class:`jwkguard.RequestPipeline` instead of the options above.
    """

    def __init__(
        self,
        app: WSGIApp,
        validator: Validator | None = None,
        *,
        exempt_paths: Iterable[str] = (),
        exempt_methods: Iterable[str] = DEFAULT_EXEMPT_METHODS,
        optional: bool = False,
        scopes: Collection[str] = (),
        realm: str = "api",
        allow_query: QueryPolicy = "never",
        sender: SenderConstraints | None = None,
        introspector: Introspector | None = None,
        introspect: bool = False,
        pipeline: RequestPipeline | None = None,
    ) -> None:
        self.app = app
        core = MiddlewareCore(
            validator,
            pipeline=pipeline,
            exempt_paths=exempt_paths,
            exempt_methods=exempt_methods,
            optional=optional,
            scopes=scopes,
            realm=realm,
            allow_query=allow_query,
            websocket_subprotocol=None,
            sender=sender,
            introspector=introspector,
            introspect=introspect,
        )
        self.pipeline = core.pipeline
        self.policy = core.policy
        self.exemptions = core.exemptions

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if self.exemptions(method, environ.get("PATH_INFO", "") or "/"):
            return self.app(environ, start_response)
        decision = self.pipeline.run(view_from_environ(environ), self.policy)
        if decision.response is None:
            environ[CLAIMS_KEY] = decision.claims
            return self.app(environ, start_response)
        return refuse(decision.response, start_response, head=method == "HEAD")


def refuse(
    response: ErrorResponse, start_response: StartResponse, *, head: bool = False
) -> list[bytes]:
    """Answer with ``response`` (JSON body, challenge, ``no-store``)."""
    body = response.body_bytes()
    status = HTTPStatus(response.status_code)
    start_response(f"{status.value} {status.phrase}", response.wire_headers(body))
    return [] if head else [body]
