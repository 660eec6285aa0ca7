"""jwkguard: strict local validation of JWT access tokens against an issuer's JSON Web Keys."""

from __future__ import annotations

from . import errors
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
from ._claims_result import Claims, read_scopes
from ._dpop import (
    DPoPNonces,
    DPoPProof,
    DPoPVerifier,
    MemoryReplayLedger,
    ReplayLedger,
    access_token_hash,
    normalise_htu,
)
from ._events import Event, EventHandler, log_event
from ._exemptions import Exemptions
from ._introspection import IntrospectionUnavailable, Introspector
from ._issuer import ClaimCheck, Issuer
from ._keyset import KeySet, VerificationKey
from ._keysource import KeySource, StaticKeySource
from ._lifecycle import Lifecycle, ReuseWatch
from ._metrics import IssuerStatus, PrometheusMetrics, issuer_status
from ._mtls import certificate_from_proxy_header, certificate_thumbprint
from ._pipeline import Decision, QueryPolicy, RequestPipeline, RoutePolicy, TokenSource
from ._policy import check_scopes
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
    "token_hash",
    "unknown_settings",
    "view_from_asgi",
    "view_from_environ",
]

__version__ = "0.1.0"
