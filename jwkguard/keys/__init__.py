"""Where an issuer's keys come from and how they are kept fresh.

A :class:`KeySet` holds preloaded public keys; a :class:`KeySource` hands the validator the
key for a token; :class:`RemoteKeySource` fetches an issuer's JWK Set (directly or through
discovery) and keeps it in a cache state machine (:class:`CachePolicy`). See
``docs/key-lifecycle.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_namespace

if TYPE_CHECKING:
    from ._cache import CachePolicy, KeyInfo, KeySourceStatus
    from ._jwk import MIN_RSA_BITS, jwk_thumbprint
    from ._remote import RemoteKeySource
    from ._set import KeySet, VerificationKey, load_jwks_document
    from ._source import KeyMatch, KeySource, StaticKeySource

__all__ = [
    "MIN_RSA_BITS",
    "CachePolicy",
    "KeyInfo",
    "KeyMatch",
    "KeySet",
    "KeySource",
    "KeySourceStatus",
    "RemoteKeySource",
    "StaticKeySource",
    "VerificationKey",
    "jwk_thumbprint",
    "load_jwks_document",
]

__getattr__, __dir__ = lazy_namespace(
    globals(),
    {
        "CachePolicy": "._cache",
        "KeyInfo": "._cache",
        "KeyMatch": "._source",
        "KeySet": "._set",
        "KeySource": "._source",
        "KeySourceStatus": "._cache",
        "MIN_RSA_BITS": "._jwk",
        "RemoteKeySource": "._remote",
        "StaticKeySource": "._source",
        "VerificationKey": "._set",
        "jwk_thumbprint": "._jwk",
        "load_jwks_document": "._set",
    },
)
