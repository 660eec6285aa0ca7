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

Every adapter exports the same shape: its entry points (here :func:`install`,
:func:`lifespan`, :class:`JWKGuardMiddleware`, :class:`JWKGuardBackend`), the route
dependencies (:class:`JWTBearer`), the current claims (:data:`CurrentClaims`), the user
(:class:`TokenUser`), the error and its handler; test helpers live in
:mod:`jwkguard_fastapi.testing`, integrations with optional dependencies in
:mod:`jwkguard_fastapi.mcp` and :mod:`jwkguard_fastapi.fastmcp`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jwkguard._lazy import lazy_namespace, require_modules

require_modules("jwkguard_fastapi", "FastAPI and Starlette", "fastapi", "fastapi", "starlette")

if TYPE_CHECKING:
    from ._dependency import (
        CurrentClaims,
        JWTBearer,
        OptionalClaims,
        bearer,
        optional_bearer,
        swagger_ui_oauth,
    )
    from ._lifespan import lifespan
    from ._metadata import add_resource_metadata
    from ._responses import BearerError, bearer_error_handler, install
    from ._starlette import JWKGuardBackend, JWKGuardMiddleware, TokenAuthenticationError, TokenUser

__all__ = [
    "BearerError",
    "CurrentClaims",
    "JWKGuardBackend",
    "JWKGuardMiddleware",
    "JWTBearer",
    "OptionalClaims",
    "TokenAuthenticationError",
    "TokenUser",
    "add_resource_metadata",
    "bearer",
    "bearer_error_handler",
    "install",
    "lifespan",
    "optional_bearer",
    "swagger_ui_oauth",
]

__getattr__, __dir__ = lazy_namespace(
    globals(),
    {
        "BearerError": "._responses",
        "CurrentClaims": "._dependency",
        "JWKGuardBackend": "._starlette",
        "JWKGuardMiddleware": "._starlette",
        "JWTBearer": "._dependency",
        "OptionalClaims": "._dependency",
        "TokenAuthenticationError": "._starlette",
        "TokenUser": "._starlette",
        "add_resource_metadata": "._metadata",
        "bearer": "._dependency",
        "bearer_error_handler": "._responses",
        "install": "._responses",
        "lifespan": "._lifespan",
        "optional_bearer": "._dependency",
        "swagger_ui_oauth": "._dependency",
    },
    # Left the package in 0.2; each still works, with a DeprecationWarning, until 0.3.
    moved={
        "ClaimsUser": "jwkguard_fastapi:TokenUser",
        "QueryPolicy": "jwkguard.pipeline",
    },
    retired={
        "Authenticator": "._authenticate",
        "metadata_response": "._metadata",
        "to_response": "._responses",
    },
)
