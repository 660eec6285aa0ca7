"""jwkguard for Flask: an extension with route decorators for bearer-token APIs.

::

    from flask import Flask
    from jwkguard_flask import JWKGuard, current_claims

    app = Flask(__name__)
    app.config.update(
        JWKGUARD_ISSUERS=[{"issuer": "https://id.example.com/",
                           "audiences": ["https://api.example.com"]}],
        JWKGUARD_ALGORITHMS=["RS256"],
    )
    guard = JWKGuard(app)

    @app.get("/orders")
    @guard.require(scopes=["orders:read"])
    def orders():
        return {"sub": current_claims.subject}

Every adapter exports the same shape: its entry point (:class:`JWKGuard`, whose ``require``
and ``protect`` guard routes), the current claims (:data:`current_claims`,
:func:`get_claims`), the error and its handler, the metrics view, and configuration from the
environment; test helpers live in :mod:`jwkguard_flask.testing`, typed claims in
:mod:`jwkguard_flask.typed`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jwkguard._lazy import lazy_namespace, require_modules

require_modules("jwkguard_flask", "Flask", "flask", "flask")

if TYPE_CHECKING:
    from ._config import config_from_env
    from ._errors import BearerError, bearer_error_handler
    from ._extension import JWKGuard
    from ._metrics import metrics_view
    from ._request import current_claims, get_claims

__all__ = [
    "BearerError",
    "JWKGuard",
    "bearer_error_handler",
    "config_from_env",
    "current_claims",
    "get_claims",
    "metrics_view",
]

__getattr__, __dir__ = lazy_namespace(
    globals(),
    {
        "BearerError": "._errors",
        "JWKGuard": "._extension",
        "bearer_error_handler": "._errors",
        "config_from_env": "._config",
        "current_claims": "._request",
        "get_claims": "._request",
        "metrics_view": "._metrics",
    },
    # Left the package in 0.2; each still works, with a DeprecationWarning, until 0.3.
    moved={"handle_bearer_error": "jwkguard_flask:bearer_error_handler"},
    retired={"CLAIMS_ATTRIBUTE": "._request", "GuardState": "._config"},
)
