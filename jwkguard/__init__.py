"""jwkguard: strict local validation of JWT access tokens against an issuer's JSON Web Keys.

The names here are what an application needs: a :class:`Validator` of :class:`Issuer` s, the
verified :class:`Claims`, the errors, and the :class:`RequestPipeline` every adapter runs.
The rest lives in public namespaces, each with its own ``__all__``:

- :mod:`jwkguard.keys`: key sets, key sources and the JWKS cache;
- :mod:`jwkguard.lifecycle`: revocation, cut-offs, replay and reuse, the admin API, audit;
- :mod:`jwkguard.fleet`: lifecycle and replay state shared through Redis;
- :mod:`jwkguard.sender`: DPoP, certificate-bound tokens, introspection;
- :mod:`jwkguard.pipeline`: the request pipeline and RFC 6750 responses, for adapter authors;
- :mod:`jwkguard.settings`: validators from settings mappings and the environment;
- :mod:`jwkguard.metrics`, :mod:`jwkguard.otel`: Prometheus and OpenTelemetry;
- :mod:`jwkguard.errors`, :mod:`jwkguard.testing`, :mod:`jwkguard.typed`,
  :mod:`jwkguard.providers`, :mod:`jwkguard.asgi`, :mod:`jwkguard.wsgi`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import errors
from ._claims_result import Claims, read_scopes
from ._events import Event, EventHandler, log_event
from ._issuer import ClaimCheck, Issuer
from ._lazy import lazy_namespace
from ._policy import check_scopes
from ._tenants import TenantIssuers
from ._token_cache import TokenCache
from ._validator import Validator
from .errors import (
    ConfigurationError,
    InsufficientScope,
    JWKGuardError,
    KeysUnavailable,
    TokenError,
)

if TYPE_CHECKING:
    from ._env import settings_from_env, validator_from_env
    from ._settings import build_validator
    from .pipeline._pipeline import RequestPipeline, RoutePolicy

__all__ = [
    "ClaimCheck",
    "Claims",
    "ConfigurationError",
    "Event",
    "EventHandler",
    "InsufficientScope",
    "Issuer",
    "JWKGuardError",
    "KeysUnavailable",
    "RequestPipeline",
    "RoutePolicy",
    "TenantIssuers",
    "TokenCache",
    "TokenError",
    "Validator",
    "build_validator",
    "check_scopes",
    "errors",
    "log_event",
    "read_scopes",
    "settings_from_env",
    "validator_from_env",
]

# Names that left the top level in 0.2: each still works, with a DeprecationWarning naming
# its new home, until 0.3.
_MOVED = {
    "ASGIHeaders": "jwkguard.pipeline",
    "AuditTrail": "jwkguard.lifecycle",
    "Credentials": "jwkguard.pipeline",
    "DPoPNonces": "jwkguard.sender",
    "DPoPProof": "jwkguard.sender",
    "DPoPVerifier": "jwkguard.sender",
    "Decision": "jwkguard.pipeline",
    "EnvironHeaders": "jwkguard.pipeline",
    "ErrorResponse": "jwkguard.pipeline",
    "Exemptions": "jwkguard.pipeline",
    "HeaderReader": "jwkguard.pipeline",
    "InsufficientUserAuthentication": "jwkguard.errors",
    "IntrospectionUnavailable": "jwkguard.errors",
    "Introspector": "jwkguard.sender",
    "InvalidRequest": "jwkguard.errors",
    "IssuerStatus": "jwkguard.metrics",
    "KeySet": "jwkguard.keys",
    "KeySource": "jwkguard.keys",
    "Lifecycle": "jwkguard.lifecycle",
    "LifecycleAdmin": "jwkguard.lifecycle",
    "LifecycleChange": "jwkguard.lifecycle",
    "LifecycleCheck": "jwkguard.lifecycle",
    "LifecycleStore": "jwkguard.lifecycle",
    "MemoryReplayLedger": "jwkguard.sender",
    "MemoryStore": "jwkguard.lifecycle",
    "PresentedRequest": "jwkguard.sender",
    "PrometheusMetrics": "jwkguard.metrics",
    "QueryPolicy": "jwkguard.pipeline",
    "RedisReplayLedger": "jwkguard.fleet",
    "RedisStore": "jwkguard.fleet",
    "ReplayLedger": "jwkguard.sender",
    "RequestView": "jwkguard.pipeline",
    "ResourceMetadata": "jwkguard.pipeline",
    "ReuseWatch": "jwkguard.lifecycle",
    "SenderConstraints": "jwkguard.sender",
    "SenderSettings": "jwkguard.sender",
    "StaticKeySource": "jwkguard.keys",
    "StoreUnavailable": "jwkguard.errors",
    "TokenSource": "jwkguard.pipeline",
    "TokenUsage": "jwkguard.lifecycle",
    "VerificationKey": "jwkguard.keys",
    "access_token_hash": "jwkguard.sender",
    "build_sender_settings": "jwkguard.sender",
    "certificate_from_proxy_header": "jwkguard.sender",
    "certificate_thumbprint": "jwkguard.sender",
    "check_resource_audience": "jwkguard.pipeline",
    "describe_unknown": "jwkguard.settings",
    "error_response": "jwkguard.pipeline",
    "extract_bearer": "jwkguard.pipeline",
    "extract_credentials": "jwkguard.pipeline",
    "fan_out": "jwkguard.lifecycle",
    "issuer_status": "jwkguard.metrics",
    "missing_token_response": "jwkguard.pipeline",
    "normalise_htu": "jwkguard.sender",
    "token_hash": "jwkguard.lifecycle",
    "unknown_settings": "jwkguard.settings",
    "view_from_asgi": "jwkguard.pipeline",
    "view_from_environ": "jwkguard.pipeline",
}

# Everything beyond validation loads on first use (PEP 562), so `import jwkguard` stays light.
__getattr__, __dir__ = lazy_namespace(
    globals(),
    {
        "RequestPipeline": ".pipeline._pipeline",
        "RoutePolicy": ".pipeline._pipeline",
        "build_validator": "._settings",
        "settings_from_env": "._env",
        "validator_from_env": "._env",
    },
    _MOVED,
)

__version__ = "0.1.0"
