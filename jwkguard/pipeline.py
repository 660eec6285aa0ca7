"""The request pipeline, for adapter authors: one ordered judgement of a request.

Application code rarely needs this module: every adapter (FastAPI, Starlette, Django, Flask,
``jwkguard.asgi``, ``jwkguard.wsgi``, ``jwkguard serve``) already runs its requests through
a :class:`RequestPipeline`. Write a new integration as glue around it: build a
:class:`RequestView`, call :meth:`RequestPipeline.run` (or ``arun``) with a
:class:`RoutePolicy` (:meth:`RoutePolicy.from_options` builds one from the keyword options
in :class:`RouteOptions`), attach ``Decision.claims`` or render ``Decision.response``.
"""

from __future__ import annotations

from ._exemptions import DEFAULT_EXEMPT_METHODS, Exemptions
from ._pipeline import (
    ANONYMOUS,
    DEFAULT_POLICY,
    OPTIONAL_POLICY,
    Decision,
    QueryPolicy,
    RequestPipeline,
    RouteOptions,
    RoutePolicy,
    TokenSource,
    acr_list,
    query_policy,
    scope_set,
)
from ._request_view import (
    ASGIHeaders,
    EnvironHeaders,
    HeaderReader,
    IndexedHeaders,
    RequestView,
    asgi_url,
    environ_url,
    view_from_asgi,
    view_from_environ,
)
from ._resource import (
    WELL_KNOWN_PATH,
    ResourceMetadata,
    build_resource_metadata,
    resource_identifier,
)

__all__ = [
    "ANONYMOUS",
    "DEFAULT_EXEMPT_METHODS",
    "DEFAULT_POLICY",
    "OPTIONAL_POLICY",
    "WELL_KNOWN_PATH",
    "ASGIHeaders",
    "Decision",
    "EnvironHeaders",
    "Exemptions",
    "HeaderReader",
    "IndexedHeaders",
    "QueryPolicy",
    "RequestPipeline",
    "RequestView",
    "ResourceMetadata",
    "RouteOptions",
    "RoutePolicy",
    "TokenSource",
    "acr_list",
    "asgi_url",
    "build_resource_metadata",
    "environ_url",
    "query_policy",
    "resource_identifier",
    "scope_set",
    "view_from_asgi",
    "view_from_environ",
]
