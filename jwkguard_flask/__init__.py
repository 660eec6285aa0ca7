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
"""

from __future__ import annotations

try:
    import flask  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError("jwkguard_flask needs Flask: pip install 'jwkguard[flask]'") from exc

from ._config import GuardState, config_from_env
from ._errors import BearerError, handle_bearer_error
from ._extension import JWKGuard
from ._metrics import metrics_view
from ._request import CLAIMS_ATTRIBUTE, current_claims, get_claims

__all__ = [
    "CLAIMS_ATTRIBUTE",
    "BearerError",
    "GuardState",
    "JWKGuard",
    "config_from_env",
    "current_claims",
    "get_claims",
    "handle_bearer_error",
    "metrics_view",
]
