"""Optional OpenTelemetry spans and metrics (``pip install 'jwkguard[otel]'``).

The same shape as :class:`~jwkguard.PrometheusMetrics`: :meth:`OpenTelemetry.instrument` wraps
one validator instance's ``validate``/``avalidate`` in a span and counts them,
:meth:`OpenTelemetry.on_event` is an ordinary event handler. Only ``opentelemetry-api`` is
needed; the application configures the SDK and its exporters, and without an SDK every call
is the API's no-op. Nothing here is imported at ``import jwkguard``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ._events import Event
from ._metrics import (
    _FETCH_FAILURE_KINDS,
    _FETCH_NOT_MODIFIED_KINDS,
    _FETCH_SUCCESS_KINDS,
    _unverified_issuer,
    issuer_status,
    outcome_of,
)
from ._parse import b64url_decode, strict_json_object
from .errors import KeysUnavailable, LifecycleError, TokenError

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.trace import Span, TracerProvider

    from ._claims_result import Claims
    from ._metrics import IssuerStatus
    from ._validator import Validator

__all__ = ["OpenTelemetry"]

SCOPE = "jwkguard"
"""The instrumentation scope (tracer and meter name)."""

_MAX_KID = 128


class OpenTelemetry:
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
            raise ImportError(
                "jwkguard's OpenTelemetry integration needs opentelemetry-api: "
                "pip install 'jwkguard[otel]'"
            ) from exc
        from . import __version__

        self._trace = trace
        self._clock = clock or time.time
        self._validators: list[Validator] = []
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        self.validations = meter.create_counter(
            "jwkguard.validations",
            unit="{validation}",
            description="Token validations by issuer, outcome and reason.",
        )
        self.duration = meter.create_histogram(
            "jwkguard.validation.duration",
            unit="s",
            description="Time spent validating one token, including any key fetch it waited for.",
        )
        self.jwks_fetches = meter.create_counter(
            "jwkguard.jwks.fetches",
            unit="{fetch}",
            description="JWK Set fetches by issuer and outcome (success, not_modified, failure).",
        )
        self.lifecycle_rejections = meter.create_counter(
            "jwkguard.lifecycle.rejections",
            unit="{token}",
            description="Validly signed tokens refused by lifecycle checks.",
        )
        self.events = meter.create_counter(
            "jwkguard.events",
            unit="{event}",
            description="Trust-change and key-source events by issuer and kind.",
        )
        meter.create_observable_gauge(
            "jwkguard.keys",
            callbacks=[self._gauge(lambda s: len(s.thumbprints))],
            unit="{key}",
            description="Usable keys held per issuer.",
        )
        meter.create_observable_gauge(
            "jwkguard.issuer.ready",
            callbacks=[self._gauge(lambda s: 1 if s.ready else 0)],
            description="1 when the issuer has usable keys.",
        )
        meter.create_observable_gauge(
            "jwkguard.key_set.age",
            callbacks=[self._gauge(self._age)],
            unit="s",
            description="Seconds since the issuer's key set was last fetched successfully.",
        )
        meter.create_observable_gauge(
            "jwkguard.serving_stale",
            callbacks=[self._gauge(lambda s: 1 if s.serving_stale else 0)],
            description="1 while refreshes fail and the last good keys are served.",
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
        self.watch(validator)
        if getattr(validator, "_jwkguard_otel", None) is self:
            return validator
        validate = validator.validate
        avalidate = validator.avalidate
        known = frozenset(issuer.issuer for issuer in validator.issuers)
        limit = validator.max_token_size
        tracer = self.tracer
        record = self._record
        clock = time.perf_counter

        def metered_validate(token: str | bytes, *, scopes: Iterable[str] = ()) -> Claims:
            with tracer.start_as_current_span(
                "jwkguard.validate", record_exception=False, set_status_on_exception=False
            ) as span:
                start = clock()
                try:
                    claims = validate(token, scopes=scopes)
                except TokenError as exc:
                    record(span, token, None, exc, clock() - start, known, limit)
                    raise
                record(span, token, claims, None, clock() - start, known, limit)
                return claims

        async def metered_avalidate(token: str | bytes, *, scopes: Iterable[str] = ()) -> Claims:
            with tracer.start_as_current_span(
                "jwkguard.validate", record_exception=False, set_status_on_exception=False
            ) as span:
                start = clock()
                try:
                    claims = await avalidate(token, scopes=scopes)
                except TokenError as exc:
                    record(span, token, None, exc, clock() - start, known, limit)
                    raise
                record(span, token, claims, None, clock() - start, known, limit)
                return claims

        attributes = vars(validator)
        attributes["validate"] = metered_validate
        attributes["avalidate"] = metered_avalidate
        attributes["_jwkguard_otel"] = self
        return validator

    def watch(self, validator: Validator) -> None:
        """Export the key-set gauges of ``validator``'s issuers at every collection."""
        if validator not in self._validators:
            self._validators.append(validator)

    def _record(
        self,
        span: Span,
        token: str | bytes,
        claims: Claims | None,
        exc: TokenError | None,
        seconds: float,
        known: frozenset[str],
        limit: int,
    ) -> None:
        if claims is not None:
            issuer, kid, reason = claims.issuer, claims.key_id, "ok"
        else:
            issuer, kid = _unverified_issuer(token, known, limit), _unverified_kid(token, limit)
            reason = exc.reason if exc is not None else "unknown"
        outcome = outcome_of(exc)
        self.duration.record(seconds)
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

    def statuses(self) -> Iterator[IssuerStatus]:
        """The status of every watched issuer."""
        for validator in self._validators:
            yield from issuer_status(validator)

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
