"""Prometheus metrics and issuer status (``pip install 'jwkguard[prometheus]'``).

Importing this module does not import ``prometheus_client``; building a
:class:`PrometheusMetrics` does. OpenTelemetry lives in :mod:`jwkguard.otel`. See
``docs/metrics.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_namespace

if TYPE_CHECKING:
    from ._prometheus import DEFAULT_BUCKETS, IssuerStatus, PrometheusMetrics, issuer_status

__all__ = [
    "DEFAULT_BUCKETS",
    "IssuerStatus",
    "PrometheusMetrics",
    "issuer_status",
]

__getattr__, __dir__ = lazy_namespace(
    globals(),
    {
        "DEFAULT_BUCKETS": "._prometheus",
        "IssuerStatus": "._prometheus",
        "PrometheusMetrics": "._prometheus",
        "issuer_status": "._prometheus",
    },
)
