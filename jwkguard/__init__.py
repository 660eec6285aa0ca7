"""jwkguard: strict local validation of JWT access tokens against an issuer's JSON Web Keys."""

from __future__ import annotations

from . import errors
from ._bearer import ErrorResponse, error_response, extract_bearer, missing_token_response
from ._claims_result import Claims, read_scopes
from ._events import Event, EventHandler, log_event
from ._issuer import ClaimCheck, Issuer
from ._keyset import KeySet, VerificationKey
from ._keysource import KeySource, StaticKeySource
from ._policy import check_scopes
from ._settings import build_validator, unknown_settings
from ._validator import LifecycleCheck, Validator
from .errors import (
    ConfigurationError,
    InsufficientScope,
    InvalidRequest,
    JWKGuardError,
    KeysUnavailable,
    TokenError,
)

__all__ = [
    "ClaimCheck",
    "Claims",
    "ConfigurationError",
    "ErrorResponse",
    "Event",
    "EventHandler",
    "InsufficientScope",
    "InvalidRequest",
    "Issuer",
    "JWKGuardError",
    "KeySet",
    "KeySource",
    "KeysUnavailable",
    "LifecycleCheck",
    "StaticKeySource",
    "TokenError",
    "Validator",
    "VerificationKey",
    "build_validator",
    "check_scopes",
    "error_response",
    "errors",
    "extract_bearer",
    "log_event",
    "missing_token_response",
    "read_scopes",
    "unknown_settings",
]

__version__ = "0.1.0"
