"""Optional OpenTelemetry spans and metrics (``pip install 'jwkguard[otel]'``).

The same shape as :class:`~jwkguard.metrics.PrometheusMetrics`:
:meth:`OpenTelemetry.instrument` wraps
one validator instance's ``validate``/``avalidate`` in a span and counts them,
:meth:`OpenTelemetry.on_event` is an ordinary event handler. Only ``opentelemetry-api`` is
needed; the application configures the SDK and its exporters, and without an SDK every call
is the API's no-op. Nothing here is imported at ``import jwkguard``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._events import Event
from .._lazy import missing_extra
from .._parse import b64url_decode, strict_json_object
from ..errors import KeysUnavailable, LifecycleError
from ._prometheus import (
    _DURATION,
    _EVENTS,
    _FETCH_FAILURE_KINDS,
    _FETCH_NOT_MODIFIED_KINDS,
    _FETCH_SUCCESS_KINDS,
    _ISSUER_READY,
    _JWKS_FETCHES,
    _KEY_SET_AGE,
    _KEYS,
    _LIFECYCLE_REJECTIONS,
    _SERVING_STALE,
    _VALIDATIONS,
    _Instrumentation,
    _Metric,
    _Validation,
    outcome_of,
)

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Counter, MeterProvider, Observation
    from opentelemetry.trace import Span, TracerProvider

    from .._validator import Validator
    from ._prometheus import IssuerStatus

__all__ = ["OpenTelemetry"]

SCOPE = "jwkguard"
"""The instrumentation scope (tracer and meter name)."""

_MAX_KID = 128


class OpenTelemetry(_Instrumentation):
    """OpenTelemetry spans and metrics for validators and their key sources.

    Example:
        telemetry = OpenTelemetry()  # the global tracer and meter providers
        validator = Validator(
            ..., on_event=fan_out(log_event, telemetry.on_event)
        )
        telemetry.instrument(validator)

    Every validation is one ``jwkguard.validate`` span (kind ``INTERNAL``) with the attributes
    ``jwkguard.outcome`` (``valid``, ``invalid``, ``forbidden``, ``bad_request``,
    ``unavailable``), ``jwkguard.reason``, ``jwkguard.issuer`` (a configured issuer or
    ``unknown``) and ``jwkguard.kid`` (the verified key id; for a refused token, the id its
    header names, at most 128 characters). The token itself is never recorded. Refusals set
    ``error.type`` to the reason; only ``unavailable`` (an outage, 503) marks the span as an
    error. Events reported while a span is current (a key fetch the validation waited for)
    become span events.

    Metrics mirror the Prometheus ones: counters ``jwkguard.validations`` (issuer, outcome,
    reason), ``jwkguard.jwks.fetches`` (issuer, outcome), ``jwkguard.lifecycle.rejections``
    (issuer, reason), ``jwkguard.events`` (issuer, kind); histogram
    ``jwkguard.validation.duration`` (seconds); and gauges ``jwkguard.keys``,
    ``jwkguard.issuer.ready``, ``jwkguard.key_set.age`` and ``jwkguard.serving_stale`` read
    from the key sources when the metrics are collected.

    Args:
        tracer_provider: Default: the global one (``opentelemetry.trace``).
        meter_provider: Default: the global one (``opentelemetry.metrics``).
        clock: Unix time, for the key-set age gauge; default ``time.time``.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        clock: Any = None,
    ) -> None:
        try:
            from opentelemetry import metrics, trace
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise missing_extra(
                "jwkguard's OpenTelemetry integration", "opentelemetry-api", "otel"
            ) from exc
        from .. import __version__

        super().__init__(clock)
        self._trace = trace
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)

        def counter(metric: _Metric) -> Counter:
            return meter.create_counter(
                metric.otel, unit=metric.unit, description=metric.description
            )

        self.validations = counter(_VALIDATIONS)
        self.duration = meter.create_histogram(
            _DURATION.otel, unit=_DURATION.unit, description=_DURATION.description
        )
        self.jwks_fetches = counter(_JWKS_FETCHES)
        self.lifecycle_rejections = counter(_LIFECYCLE_REJECTIONS)
        self.events = counter(_EVENTS)
        gauges: tuple[tuple[_Metric, Callable[[IssuerStatus], float | None]], ...] = (
            (_KEYS, lambda s: len(s.thumbprints)),
            (_ISSUER_READY, lambda s: 1 if s.ready else 0),
            (_KEY_SET_AGE, self._age),
            (_SERVING_STALE, lambda s: 1 if s.serving_stale else 0),
        )
        for metric, value in gauges:
            meter.create_observable_gauge(
                metric.otel,
                callbacks=[self._gauge(value)],
                unit=metric.unit,
                description=metric.description,
            )

    # -- events ---------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """An ``EventHandler``: counts the event, and adds it to the current span if any."""
        issuer = event.issuer
        kind = event.kind
        self.events.add(1, {"jwkguard.issuer": issuer, "jwkguard.kind": kind})
        outcome = (
            "success"
            if kind in _FETCH_SUCCESS_KINDS
            else "failure"
            if kind in _FETCH_FAILURE_KINDS
            else "not_modified"
            if kind in _FETCH_NOT_MODIFIED_KINDS
            else None
        )
        if outcome is not None:
            self.jwks_fetches.add(1, {"jwkguard.issuer": issuer, "jwkguard.outcome": outcome})
        span = self._trace.get_current_span()
        if span.is_recording():
            attributes: dict[str, str] = {"jwkguard.issuer": issuer}
            if event.kid is not None:
                attributes["jwkguard.kid"] = event.kid
            span.add_event(f"jwkguard.{kind}", attributes)

    # -- validations ----------------------------------------------------------------------

    def instrument(self, validator: Validator) -> Validator:
        """Trace, count and time every validation of ``validator``, and watch its key sets.

        The validator's own ``validate``/``avalidate`` are wrapped on this one instance (the
        class is untouched; a ``PrometheusMetrics`` may wrap the same instance too). Returns
        the same validator.
        """
        tracer = self.tracer
        return self._wrap(
            validator,
            "_jwkguard_otel",
            self._record,
            lambda: tracer.start_as_current_span(
                "jwkguard.validate", record_exception=False, set_status_on_exception=False
            ),
        )

    def _record(self, span: Span, validation: _Validation) -> None:
        claims, exc = validation.claims, validation.error
        issuer = validation.issuer()
        if claims is not None:
            kid, reason = claims.key_id, "ok"
        else:
            kid = _unverified_kid(validation.token, validation.max_token_size)
            reason = exc.reason if exc is not None else "unknown"
        outcome = outcome_of(exc)
        self.duration.record(validation.seconds)
        self.validations.add(
            1,
            {"jwkguard.issuer": issuer, "jwkguard.outcome": outcome, "jwkguard.reason": reason},
        )
        if isinstance(exc, LifecycleError):
            self.lifecycle_rejections.add(1, {"jwkguard.issuer": issuer, "jwkguard.reason": reason})
        if not span.is_recording():
            return
        span.set_attribute("jwkguard.outcome", outcome)
        span.set_attribute("jwkguard.reason", reason)
        span.set_attribute("jwkguard.issuer", issuer)
        if kid is not None:
            span.set_attribute("jwkguard.kid", kid)
        if exc is not None:
            span.set_attribute("error.type", reason)
            if isinstance(exc, KeysUnavailable):
                from opentelemetry.trace import Status, StatusCode

                span.set_status(Status(StatusCode.ERROR, reason))

    # -- gauges ---------------------------------------------------------------------------

    def _age(self, status: IssuerStatus) -> float | None:
        if status.fetched_at is None:
            return None
        return max(0.0, float(self._clock()) - status.fetched_at)

    def _gauge(self, value: Any) -> Any:
        from opentelemetry.metrics import Observation

        def callback(options: CallbackOptions) -> Iterable[Observation]:
            observations = []
            for status in self.statuses():
                measured = value(status)
                if measured is not None:
                    observations.append(Observation(measured, {"jwkguard.issuer": status.issuer}))
            return observations

        return callback


def _unverified_kid(token: str | bytes, limit: int) -> str | None:
    """The ``kid`` a refused token's header names (bounded), for the span; never the token."""
    try:
        raw = token.encode("ascii") if isinstance(token, str) else bytes(token)
        if len(raw) > limit:
            return None
        header = strict_json_object(b64url_decode(raw.split(b".", 1)[0]), "header")
    except Exception:
        return None
    kid = header.get("kid")
    return kid if isinstance(kid, str) and len(kid) <= _MAX_KID else None
