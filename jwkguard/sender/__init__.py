"""What a request must prove beyond the token: DPoP, certificate binding, introspection.

:class:`DPoPVerifier` checks DPoP proofs (RFC 9449), :func:`certificate_thumbprint` and
:func:`certificate_from_proxy_header` serve certificate-bound tokens (RFC 8705), and
:class:`Introspector` asks the authorization server about a token (RFC 7662).
:class:`SenderConstraints` is where the request pipeline enforces them (its options typed
once in :class:`SenderOptions`, for adapters that take them flat);
:func:`build_sender_settings` builds all of them from a settings mapping, and
:func:`build_pipeline` an adapter's request pipeline from its settings object.
See ``docs/sender-constrained.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_namespace

if TYPE_CHECKING:
    from ._constraints import PresentedRequest, SenderConstraints, SenderOptions
    from ._dpop import (
        DPoPNonces,
        DPoPProof,
        DPoPRequest,
        DPoPVerifier,
        MemoryReplayLedger,
        ReplayLedger,
        access_token_hash,
        normalise_htu,
    )
    from ._introspection import Introspector
    from ._mtls import certificate_from_proxy_header, certificate_thumbprint
    from ._settings import (
        SENDER_SETTINGS,
        PipelineSettings,
        SenderSettings,
        build_pipeline,
        build_sender_settings,
    )

__all__ = [
    "SENDER_SETTINGS",
    "DPoPNonces",
    "DPoPProof",
    "DPoPRequest",
    "DPoPVerifier",
    "Introspector",
    "MemoryReplayLedger",
    "PipelineSettings",
    "PresentedRequest",
    "ReplayLedger",
    "SenderConstraints",
    "SenderOptions",
    "SenderSettings",
    "access_token_hash",
    "build_pipeline",
    "build_sender_settings",
    "certificate_from_proxy_header",
    "certificate_thumbprint",
    "normalise_htu",
]

__getattr__, __dir__ = lazy_namespace(
    globals(),
    {
        "DPoPNonces": "._dpop",
        "DPoPProof": "._dpop",
        "DPoPRequest": "._dpop",
        "DPoPVerifier": "._dpop",
        "Introspector": "._introspection",
        "MemoryReplayLedger": "._dpop",
        "PipelineSettings": "._settings",
        "PresentedRequest": "._constraints",
        "ReplayLedger": "._dpop",
        "SENDER_SETTINGS": "._settings",
        "SenderConstraints": "._constraints",
        "SenderOptions": "._constraints",
        "SenderSettings": "._settings",
        "access_token_hash": "._dpop",
        "build_pipeline": "._settings",
        "build_sender_settings": "._settings",
        "certificate_from_proxy_header": "._mtls",
        "certificate_thumbprint": "._mtls",
        "normalise_htu": "._dpop",
    },
)
