"""jwkguard for FastAPI and Starlette: a security dependency, an auth backend, a middleware.

Example::

    from fastapi import FastAPI, Security
    from jwkguard import Claims
    from jwkguard_fastapi import JWTBearer, install, lifespan

    auth = JWTBearer(validator)
    app = FastAPI(lifespan=lifespan(validator))
    install(app)

    @app.get("/orders")
    async def orders(claims: Claims = Security(auth, scopes=["orders:read"])): ...
"""

from __future__ import annotations

try:
    import fastapi as _fastapi  # noqa: F401
    import starlette as _starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "jwkguard_fastapi needs FastAPI and Starlette: pip install 'jwkguard[fastapi]'"
    ) from exc

from ._authenticate import Authenticator, QueryPolicy
from ._dependency import (
    CurrentClaims,
    JWTBearer,
    OptionalClaims,
    bearer,
    optional_bearer,
    swagger_ui_oauth,
)
from ._lifespan import lifespan
from ._metadata import add_resource_metadata, metadata_response
from ._responses import BearerError, bearer_error_handler, install, to_response
from ._starlette import ClaimsUser, JWKGuardBackend, JWKGuardMiddleware, TokenAuthenticationError

__all__ = [
    "Authenticator",
    "BearerError",
    "ClaimsUser",
    "CurrentClaims",
    "JWKGuardBackend",
    "JWKGuardMiddleware",
    "JWTBearer",
    "OptionalClaims",
    "QueryPolicy",
    "TokenAuthenticationError",
    "add_resource_metadata",
    "bearer",
    "bearer_error_handler",
    "install",
    "lifespan",
    "metadata_response",
    "optional_bearer",
    "swagger_ui_oauth",
    "to_response",
]
