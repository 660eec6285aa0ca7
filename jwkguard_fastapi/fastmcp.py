"""jwkguard as the auth provider of a standalone FastMCP server.

FastMCP's documented extension point for resource servers is a subclass of
``fastmcp.server.auth.TokenVerifier``: ``verify_token`` decides, ``get_routes`` adds the
well-known routes, ``get_middleware`` the HTTP middleware. :class:`JWKGuardProvider` fills all
three: jwkguard validates (with the RFC 8707 check that the token names this server), the
RFC 9728 metadata document is served, and a guard in front of the MCP endpoint answers
refusals with jwkguard's detail (expired, wrong audience, missing scope, 503 when no keys can
be had) instead of FastMCP's single 401::

    from fastmcp import FastMCP
    from jwkguard_fastapi.fastmcp import JWKGuardProvider

    auth = JWKGuardProvider(validator, resource="https://api.example.com/mcp")
    mcp = FastMCP("tools", auth=auth)
    app = mcp.http_app(path="/mcp")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Unpack
from urllib.parse import urlsplit

try:
    from fastmcp.server.auth import TokenVerifier
    from fastmcp.server.auth.auth import AccessToken
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("jwkguard_fastapi.fastmcp needs FastMCP: pip install fastmcp") from exc
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jwkguard import ConfigurationError, Validator
from jwkguard.pipeline import ResourceMetadata

from ._metadata import metadata_response
from .mcp import JWKGuardMCPGuard, JWKGuardTokenVerifier

if TYPE_CHECKING:
    from .mcp import _VerifierOptions

__all__ = ["JWKGuardProvider"]


class JWKGuardProvider(TokenVerifier):
    """A FastMCP ``TokenVerifier`` backed by a jwkguard validator.

    Args:
        validator: The validator (issuers, algorithms, key cache).
        resource: The MCP server's resource identifier, e.g. ``https://api.example.com/mcp``
            (its path is the MCP endpoint's), or its :class:`jwkguard.pipeline.ResourceMetadata`.
            Tokens must name it in ``aud`` (RFC 8707).
        options: As for :class:`jwkguard_fastapi.mcp.JWKGuardTokenVerifier`:
            ``required_scopes`` (403 ``insufficient_scope`` without them), ``acr_values`` and
            ``max_age`` (RFC 9470 step-up), ``realm``, ``sender`` (DPoP and certificate
            binding; bound tokens are refused by default).
    """

    def __init__(
        self,
        validator: Validator,
        *,
        resource: str | ResourceMetadata,
        **options: Unpack[_VerifierOptions],
    ) -> None:
        self.verifier = JWKGuardTokenVerifier(validator, resource=resource, **options)
        parts = urlsplit(self.verifier.resource)
        self.endpoint = parts.path.rstrip("/") or "/"
        super().__init__(
            base_url=f"{parts.scheme}://{parts.netloc}",
            required_scopes=sorted(self.verifier.policy.scopes),
        )

    @property
    def metadata(self) -> ResourceMetadata:
        """The resource's RFC 9728 metadata."""
        return self.verifier.metadata

    async def verify_token(self, token: str) -> AccessToken | None:
        """FastMCP's ``AccessToken`` (every claim in ``claims``), or None when refused."""
        return await self.verifier.averify(token, AccessToken)

    def _check_path(self, mcp_path: str | None) -> None:
        if mcp_path is not None and (mcp_path.rstrip("/") or "/") != self.endpoint:
            raise ConfigurationError(
                f"the MCP endpoint is {mcp_path} but the resource {self.verifier.resource} "
                f"names {self.endpoint}: serve it at the resource's path"
            )

    def set_mcp_path(self, mcp_path: str | None) -> None:
        """FastMCP tells the endpoint's path; it must be the resource identifier's."""
        self._check_path(mcp_path)
        super().set_mcp_path(mcp_path)

    def get_routes(self, mcp_path: str | None = None) -> list[Route]:
        """The RFC 9728 metadata document, at its well-known path."""
        self._check_path(mcp_path)
        metadata = self.metadata

        async def document(request: Request) -> Response:
            return metadata_response(metadata)

        return [Route(metadata.metadata_path, document, methods=["GET", "HEAD"])]

    def get_middleware(self) -> list[Any]:
        """jwkguard's guard in front of FastMCP's own authentication middleware."""
        guard = Middleware(
            JWKGuardMCPGuard,
            verifier=self.verifier,
            paths=(self.endpoint,),
            kind=AccessToken,
        )
        return [guard, *super().get_middleware()]
