"""The request pipeline, for adapter authors: one ordered judgement of a request.

Application code rarely needs this module: every adapter (FastAPI, Starlette, Django, Flask,
``jwkguard.asgi``, ``jwkguard.wsgi``, ``jwkguard serve``) already runs its requests through
a :class:`RequestPipeline`. Write a new integration as glue around it: build a
:class:`RequestView`, call :meth:`RequestPipeline.run` (or ``arun``) with a
:class:`RoutePolicy` (:meth:`RoutePolicy.from_options` builds one from the keyword options
in :class:`RouteOptions`), attach ``Decision.claims`` or render ``Decision.response``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_namespace

if TYPE_CHECKING:
    from ._bearer import (
        Credentials,
        ErrorResponse,
        error_response,
        extract_bearer,
        extract_credentials,
        missing_token_response,
    )
    from ._exemptions import DEFAULT_EXEMPT_METHODS, Exemptions
    from ._pipeline import (
        ANONYMOUS,
        DEFAULT_POLICY,
        OPTIONAL_POLICY,
        Decision,
        PipelineOptions,
        QueryPolicy,
        RequestPipeline,
        RouteDemands,
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
        check_resource_audience,
        resource_identifier,
    )

__all__ = [
    "ANONYMOUS",
    "DEFAULT_EXEMPT_METHODS",
    "DEFAULT_POLICY",
    "OPTIONAL_POLICY",
    "WELL_KNOWN_PATH",
    "ASGIHeaders",
    "Credentials",
    "Decision",
    "EnvironHeaders",
    "ErrorResponse",
    "Exemptions",
    "HeaderReader",
    "IndexedHeaders",
    "PipelineOptions",
    "QueryPolicy",
    "RequestPipeline",
    "RequestView",
    "ResourceMetadata",
    "RouteDemands",
    "RouteOptions",
    "RoutePolicy",
    "TokenSource",
    "acr_list",
    "asgi_url",
    "build_resource_metadata",
    "check_resource_audience",
    "environ_url",
    "error_response",
    "extract_bearer",
    "extract_credentials",
    "missing_token_response",
    "query_policy",
    "resource_identifier",
    "scope_set",
    "view_from_asgi",
    "view_from_environ",
]

__getattr__, __dir__ = lazy_namespace(
    globals(),
    {
        "ANONYMOUS": "._pipeline",
        "ASGIHeaders": "._request_view",
        "Credentials": "._bearer",
        "DEFAULT_EXEMPT_METHODS": "._exemptions",
        "DEFAULT_POLICY": "._pipeline",
        "Decision": "._pipeline",
        "EnvironHeaders": "._request_view",
        "ErrorResponse": "._bearer",
        "Exemptions": "._exemptions",
        "HeaderReader": "._request_view",
        "IndexedHeaders": "._request_view",
        "OPTIONAL_POLICY": "._pipeline",
        "PipelineOptions": "._pipeline",
        "QueryPolicy": "._pipeline",
        "RequestPipeline": "._pipeline",
        "RequestView": "._request_view",
        "ResourceMetadata": "._resource",
        "RouteDemands": "._pipeline",
        "RouteOptions": "._pipeline",
        "RoutePolicy": "._pipeline",
        "TokenSource": "._pipeline",
        "WELL_KNOWN_PATH": "._resource",
        "acr_list": "._pipeline",
        "asgi_url": "._request_view",
        "build_resource_metadata": "._resource",
        "check_resource_audience": "._resource",
        "environ_url": "._request_view",
        "error_response": "._bearer",
        "extract_bearer": "._bearer",
        "extract_credentials": "._bearer",
        "missing_token_response": "._bearer",
        "query_policy": "._pipeline",
        "resource_identifier": "._resource",
        "scope_set": "._pipeline",
        "view_from_asgi": "._request_view",
        "view_from_environ": "._request_view",
    },
)
