"""Serving the RFC 9728 Protected Resource Metadata document from a FastAPI or Starlette app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from jwkguard import ConfigurationError
from jwkguard.pipeline import ResourceMetadata

if TYPE_CHECKING:
    from ._dependency import JWTBearer

__all__ = ["add_resource_metadata", "metadata_response"]


def metadata_response(metadata: ResourceMetadata) -> Response:
    """The document as a Starlette response (200, JSON, cacheable, any origin)."""
    body = metadata.body_bytes()
    headers = dict(metadata.wire_headers(body))
    headers.pop("Content-Length")  # Starlette sets it
    return Response(body, headers=headers, media_type="application/json")


def add_resource_metadata(app: Starlette, source: ResourceMetadata | JWTBearer) -> str:
    """Serve the resource's metadata document at its RFC 9728 well-known path.

    Args:
        app: The FastAPI or Starlette app.
        source: The metadata, or a ``JWTBearer`` built with ``resource=`` (its document then
            names the validator's issuers as ``authorization_servers``).

    Returns:
        The path served: ``/.well-known/oauth-protected-resource`` followed by the
        resource's own path (``/mcp`` for ``https://api.example.com/mcp``).
    """
    from ._dependency import JWTBearer

    if isinstance(source, ResourceMetadata):
        fixed: ResourceMetadata | None = source
        path = source.metadata_path
    elif isinstance(source, JWTBearer):
        resource = source.authenticator.resource
        if resource is None:
            raise ConfigurationError("this JWTBearer has no resource=: nothing to describe")
        fixed = None
        path = (
            resource.metadata_path
            if isinstance(resource, ResourceMetadata)
            else ResourceMetadata(resource).metadata_path
        )
    else:
        raise ConfigurationError("add_resource_metadata needs a ResourceMetadata or a JWTBearer")

    async def document(request: Request) -> Response:
        metadata = fixed if fixed is not None else source.metadata(request)  # type: ignore[union-attr]
        if metadata is None:  # pragma: no cover - a JWTBearer with resource= always has one
            return Response(status_code=404)
        return metadata_response(metadata)

    app.add_route(path, document, methods=["GET"], include_in_schema=False)
    return path
