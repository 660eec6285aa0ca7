"""jwkguard: strict local validation of JWT access tokens against an issuer's JSON Web Keys."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from . import errors
from ._claims_result import Claims, read_scopes
from ._events import Event, EventHandler, log_event
from ._issuer import ClaimCheck, Issuer
from ._keyset import KeySet, VerificationKey
from ._keysource import KeySource, StaticKeySource
from ._policy import check_scopes
from ._tenants import TenantIssuers
from ._token_cache import TokenCache
from ._validator import LifecycleCheck, Validator
from .errors import (
    ConfigurationError,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidRequest,
    JWKGuardError,
    KeysUnavailable,
    StoreUnavailable,
    TokenError,
)

if TYPE_CHECKING:
    from ._admin import LifecycleAdmin
    from ._audit import AuditTrail, fan_out, token_hash
    from ._bearer import (
        Credentials,
        ErrorResponse,
        error_response,
        extract_bearer,
        extract_credentials,
        missing_token_response,
    )
    from ._dpop import (
        DPoPNonces,
        DPoPProof,
        DPoPVerifier,
        MemoryReplayLedger,
        ReplayLedger,
        access_token_hash,
        normalise_htu,
    )
    from ._env import settings_from_env, validator_from_env
    from ._exemptions import Exemptions
    from ._introspection import IntrospectionUnavailable, Introspector
    from ._lifecycle import Lifecycle, ReuseWatch
    from ._metrics import IssuerStatus, PrometheusMetrics, issuer_status
    from ._mtls import certificate_from_proxy_header, certificate_thumbprint
    from ._pipeline import Decision, QueryPolicy, RequestPipeline, RoutePolicy, TokenSource
    from ._redis_store import RedisStore
    from ._replay_ledger import RedisReplayLedger
    from ._replica import LifecycleChange
    from ._request_view import (
        ASGIHeaders,
        EnvironHeaders,
        HeaderReader,
        RequestView,
        view_from_asgi,
        view_from_environ,
    )
    from ._resource import ResourceMetadata, check_resource_audience
    from ._sender import PresentedRequest, SenderConstraints
    from ._sender_settings import SenderSettings, build_sender_settings
    from ._settings import build_validator, describe_unknown, unknown_settings
    from ._stores import LifecycleStore, MemoryStore, TokenUsage

__all__ = [
    "ASGIHeaders",
    "AuditTrail",
    "ClaimCheck",
    "Claims",
    "ConfigurationError",
    "Credentials",
    "DPoPNonces",
    "DPoPProof",
    "DPoPVerifier",
    "Decision",
    "EnvironHeaders",
    "ErrorResponse",
    "Event",
    "EventHandler",
    "Exemptions",
    "HeaderReader",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "IntrospectionUnavailable",
    "Introspector",
    "InvalidRequest",
    "Issuer",
    "IssuerStatus",
    "JWKGuardError",
    "KeySet",
    "KeySource",
    "KeysUnavailable",
    "Lifecycle",
    "LifecycleAdmin",
    "LifecycleChange",
    "LifecycleCheck",
    "LifecycleStore",
    "MemoryReplayLedger",
    "MemoryStore",
    "PresentedRequest",
    "PrometheusMetrics",
    "QueryPolicy",
    "RedisReplayLedger",
    "RedisStore",
    "ReplayLedger",
    "RequestPipeline",
    "RequestView",
    "ResourceMetadata",
    "ReuseWatch",
    "RoutePolicy",
    "SenderConstraints",
    "SenderSettings",
    "StaticKeySource",
    "StoreUnavailable",
    "TenantIssuers",
    "TokenCache",
    "TokenError",
    "TokenSource",
    "TokenUsage",
    "Validator",
    "VerificationKey",
    "access_token_hash",
    "build_sender_settings",
    "build_validator",
    "certificate_from_proxy_header",
    "certificate_thumbprint",
    "check_resource_audience",
    "check_scopes",
    "describe_unknown",
    "error_response",
    "errors",
    "extract_bearer",
    "extract_credentials",
    "fan_out",
    "issuer_status",
    "log_event",
    "missing_token_response",
    "normalise_htu",
    "read_scopes",
    "settings_from_env",
    "token_hash",
    "unknown_settings",
    "validator_from_env",
    "view_from_asgi",
    "view_from_environ",
]

# Everything beyond validation loads on first use (PEP 562): `import jwkguard` stays light,
# and `from jwkguard import RequestPipeline` works as before.
_LAZY = {
    "ASGIHeaders": "._request_view",
    "AuditTrail": "._audit",
    "Credentials": "._bearer",
    "DPoPNonces": "._dpop",
    "DPoPProof": "._dpop",
    "DPoPVerifier": "._dpop",
    "Decision": "._pipeline",
    "EnvironHeaders": "._request_view",
    "ErrorResponse": "._bearer",
    "Exemptions": "._exemptions",
    "HeaderReader": "._request_view",
    "IntrospectionUnavailable": "._introspection",
    "Introspector": "._introspection",
    "IssuerStatus": "._metrics",
    "Lifecycle": "._lifecycle",
    "LifecycleAdmin": "._admin",
    "LifecycleChange": "._replica",
    "LifecycleStore": "._stores",
    "MemoryReplayLedger": "._dpop",
    "MemoryStore": "._stores",
    "PresentedRequest": "._sender",
    "PrometheusMetrics": "._metrics",
    "QueryPolicy": "._pipeline",
    "RedisReplayLedger": "._replay_ledger",
    "RedisStore": "._redis_store",
    "ReplayLedger": "._dpop",
    "RequestPipeline": "._pipeline",
    "RequestView": "._request_view",
    "ResourceMetadata": "._resource",
    "ReuseWatch": "._lifecycle",
    "RoutePolicy": "._pipeline",
    "SenderConstraints": "._sender",
    "SenderSettings": "._sender_settings",
    "TokenSource": "._pipeline",
    "TokenUsage": "._stores",
    "access_token_hash": "._dpop",
    "build_sender_settings": "._sender_settings",
    "build_validator": "._settings",
    "certificate_from_proxy_header": "._mtls",
    "certificate_thumbprint": "._mtls",
    "check_resource_audience": "._resource",
    "describe_unknown": "._settings",
    "error_response": "._bearer",
    "extract_bearer": "._bearer",
    "extract_credentials": "._bearer",
    "fan_out": "._audit",
    "issuer_status": "._metrics",
    "missing_token_response": "._bearer",
    "normalise_htu": "._dpop",
    "settings_from_env": "._env",
    "token_hash": "._audit",
    "unknown_settings": "._settings",
    "validator_from_env": "._env",
    "view_from_asgi": "._request_view",
    "view_from_environ": "._request_view",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__version__ = "0.1.0"
