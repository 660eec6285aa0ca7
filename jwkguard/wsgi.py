"""Protect any WSGI application (Falcon, Pyramid, Bottle, raw WSGI, ...).

Example:
    from jwkguard.wsgi import JWKGuardMiddleware

    app = JWKGuardMiddleware(wsgi_app, validator, exempt_paths=["/health"])

The verified claims are in ``environ["jwkguard.claims"]`` (a :class:`jwkguard.Claims`; None
on an optional request without a token). Refusals are the RFC 6750 answers every jwkguard
adapter gives (JSON body, ``WWW-Authenticate``). No web framework is imported. With
``resource=`` (RFC 9728), challenges carry ``resource_metadata`` and ``GET`` at the resource's
well-known path answers with the metadata document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from .pipeline._bearer import ErrorResponse
from .pipeline._exemptions import DEFAULT_EXEMPT_METHODS
from .pipeline._middleware import CLAIMS_KEY, GuardedApp
from .pipeline._request_view import view_from_environ

__all__ = ["CLAIMS_KEY", "DEFAULT_EXEMPT_METHODS", "GuardedApp", "JWKGuardMiddleware", "refuse"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class JWKGuardMiddleware(GuardedApp[WSGIApp]):
    """WSGI middleware: every request needs a valid token, except the exempt ones.

    ``JWKGuardMiddleware(app, validator, *, exempt_paths=(), exempt_methods=("OPTIONS",),
    optional=False, realm="api", allow_query="never", sender=None, introspector=None,
    resource=None, pipeline=None, **route)``: the options are described on
    :class:`jwkguard.wsgi.GuardedApp`, ``route`` (``scopes``, ``introspect``, ...) on
    :class:`jwkguard.pipeline.RouteOptions`.
    """

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = environ.get("PATH_INFO", "") or "/"
        resource = self.resource
        if resource is not None and method in ("GET", "HEAD") and resource.serves(path):
            body = resource.body_bytes()
            start_response("200 OK", resource.wire_headers(body))
            return [] if method == "HEAD" else [body]
        if self.exemptions(method, path):
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
