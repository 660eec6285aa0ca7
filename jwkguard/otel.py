"""OpenTelemetry spans and metrics for jwkguard (``pip install 'jwkguard[otel]'``).

See ``docs/metrics.md``. Importing this module does not import ``opentelemetry``; building an
:class:`OpenTelemetry` does.
"""

from __future__ import annotations

from .metrics._otel import SCOPE, OpenTelemetry

__all__ = ["SCOPE", "OpenTelemetry"]
