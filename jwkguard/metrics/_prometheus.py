"""Optional Prometheus metrics (``pip install jwkguard[prometheus]``).

Nothing here touches the validator's hot path unless asked: :meth:`PrometheusMetrics.instrument`
wraps one validator instance's ``validate``/``avalidate``, :meth:`PrometheusMetrics.on_event`
counts trust-change events, and key-set gauges are read from the key sources only when
Prometheus scrapes. ``prometheus_client`` is imported when a ``PrometheusMetrics`` is built,
never at ``import jwkguard``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from .._events import Event
from .._lazy import missing_extra
from .._parse import b64url_decode, strict_json_object
from ..errors import InsufficientScope, KeysUnavailable, LifecycleError, TokenError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter

    from .._claims_result import Claims
    from .._validator import Validator

__all__ = ["IssuerStatus", "PrometheusMetrics", "issuer_status", "outcome_of"]

DEFAULT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1)
"""Latency buckets in seconds: local validation takes tens of microseconds, fetches more."""

_FETCH_SUCCESS_KINDS = frozenset({"keys_fetched", "refreshed", "recovered", "keys_loaded"})
_FETCH_FAILURE_KINDS = frozenset({"refresh_failed", "fetch_failed"})
_FETCH_NOT_MODIFIED_KINDS = frozenset({"not_modified"})


@dataclass(frozen=True, slots=True)
class _Metric:
    """One metric as both exporters name it: Prometheus (under its namespace) and OTel."""

    prometheus: str
    otel: str
    unit: str
    description: str
    labels: tuple[str, ...] = ()


_VALIDATIONS = _Metric(
    "validations",
    "jwkguard.validations",
    "{validation}",
    "Token validations by issuer, outcome and reason.",
    ("issuer", "outcome", "reason"),
)
_DURATION = _Metric(
    "validation_duration_seconds",
    "jwkguard.validation.duration",
    "s",
    "Time spent validating one token, including any key fetch it waited for.",
)
_JWKS_FETCHES = _Metric(
    "jwks_fetches",
    "jwkguard.jwks.fetches",
    "{fetch}",
    "JWK Set fetches by issuer and outcome (success, not_modified, failure).",
    ("issuer", "outcome"),
)
_LIFECYCLE_REJECTIONS = _Metric(
    "lifecycle_rejections",
    "jwkguard.lifecycle.rejections",
    "{token}",
    "Validly signed tokens refused by lifecycle checks (revoked, cut off, replayed, ...).",
    ("issuer", "reason"),
)
_EVENTS = _Metric(
    "events",
    "jwkguard.events",
    "{event}",
    "Trust-change and key-source events by issuer and kind.",
    ("issuer", "kind"),
)
_KEYS = _Metric("keys", "jwkguard.keys", "{key}", "Usable keys held per issuer.", ("issuer",))
_ISSUER_READY = _Metric(
    "issuer_ready", "jwkguard.issuer.ready", "", "1 when the issuer has usable keys.", ("issuer",)
)
_KEY_SET_AGE = _Metric(
    "key_set_age_seconds",
    "jwkguard.key_set.age",
    "s",
    "Seconds since the issuer's key set was last fetched successfully.",
    ("issuer",),
)
_SERVING_STALE = _Metric(
    "serving_stale",
    "jwkguard.serving_stale",
    "",
    "1 while refreshes fail and the last good keys are served.",
    ("issuer",),
)


@dataclass(frozen=True, slots=True)
class IssuerStatus:
    """What one issuer's key source holds right now (read-only, for health and metrics).

    Attributes:
        issuer: The configured issuer.
        ready: True when usable keys are held and may be served.
        kids: The key ids of the usable keys.
        thumbprints: Their RFC 7638 thumbprints.
        fetched_at: Unix time of the last successful fetch (None for static keys).
        expires_at: When the cached set is due for refresh (None for static keys).
        serving_stale: True while refreshes fail and the last good keys serve.
        source: ``static`` or ``remote``.
        jwks_uri: Where remote keys come from (None for static keys or before discovery).
        last_error: Why the last fetch failed, while fetches fail.
        consecutive_failures: Failed fetches since the last good one.
    """

    issuer: str
    ready: bool
    kids: tuple[str | None, ...]
    thumbprints: tuple[str, ...]
    fetched_at: float | None = None
    expires_at: float | None = None
    serving_stale: bool = False
    source: str = "static"
    jwks_uri: str | None = None
    last_error: str | None = None
    consecutive_failures: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "issuer": self.issuer,
            "ready": self.ready,
            "source": self.source,
            "kids": list(self.kids),
            "thumbprints": list(self.thumbprints),
            "fetched_at": self.fetched_at,
            "expires_at": self.expires_at,
            "serving_stale": self.serving_stale,
            "jwks_uri": self.jwks_uri,
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
        }


def _attr(snapshot: Any, name: str, default: Any = None) -> Any:
    if isinstance(snapshot, dict):
        return snapshot.get(name, default)
    return getattr(snapshot, name, default)


def issuer_status(validator: Validator) -> list[IssuerStatus]:
    """The status of every issuer of ``validator``, read without any IO.

    Remote key sources publish a snapshot through ``status()``; static ones are ready as soon
    as they hold a key.
    """
    statuses: list[IssuerStatus] = []
    for issuer in validator.issuers:
        source = validator.key_source(issuer.issuer)
        status_of = getattr(source, "status", None)
        if callable(status_of):
            snapshot = status_of()
            kids = tuple(_attr(snapshot, "kids", ()) or ())
            thumbprints = tuple(_attr(snapshot, "thumbprints", ()) or ())
            ready = _attr(snapshot, "ready", None)
            if ready is None:
                ready = bool(thumbprints or kids)
            statuses.append(
                IssuerStatus(
                    issuer=issuer.issuer,
                    ready=bool(ready),
                    kids=kids,
                    thumbprints=thumbprints,
                    fetched_at=_attr(snapshot, "fetched_at"),
                    expires_at=_attr(snapshot, "expires_at"),
                    serving_stale=bool(_attr(snapshot, "serving_stale", False)),
                    source="remote",
                    jwks_uri=_attr(snapshot, "jwks_uri"),
                    last_error=_attr(snapshot, "last_error"),
                    consecutive_failures=int(_attr(snapshot, "consecutive_failures", 0) or 0),
                )
            )
            continue
        keys = source.current_keys()
        held = tuple(keys.keys) if keys is not None else ()
        statuses.append(
            IssuerStatus(
                issuer=issuer.issuer,
                ready=bool(held),
                kids=tuple(key.kid for key in held),
                thumbprints=tuple(key.thumbprint for key in held),
                source="static" if issuer.uses_static_keys else "remote",
            )
        )
    return statuses


def outcome_of(exc: TokenError | None) -> str:
    """The ``outcome`` label: valid, invalid, forbidden, unavailable or bad_request."""
    if exc is None:
        return "valid"
    if isinstance(exc, KeysUnavailable):
        return "unavailable"
    if isinstance(exc, InsufficientScope):
        return "forbidden"
    if exc.status_code == 400:
        return "bad_request"
    return "invalid"


def _unverified_issuer(token: str | bytes, known: frozenset[str], limit: int) -> str:
    """The token's ``iss`` if it names a configured issuer, else ``unknown`` (bounded labels)."""
    try:
        raw = token.encode("ascii") if isinstance(token, str) else bytes(token)
        if len(raw) > limit:
            return "unknown"
        payload = strict_json_object(b64url_decode(raw.split(b".")[1]), "payload")
    except Exception:
        return "unknown"
    iss = payload.get("iss")
    return iss if isinstance(iss, str) and iss in known else "unknown"


class _Validation(NamedTuple):
    """One finished validation of an instrumented validator, as the exporters record it."""

    token: str | bytes
    claims: Claims | None
    error: TokenError | None
    seconds: float
    known_issuers: frozenset[str]
    max_token_size: int

    def issuer(self) -> str:
        """The verified issuer; for a refused token, the configured issuer it names, or
        ``unknown`` (bounded labels)."""
        if self.claims is not None:
            return self.claims.issuer
        return _unverified_issuer(self.token, self.known_issuers, self.max_token_size)


class _Instrumentation:
    """What :class:`PrometheusMetrics` and ``OpenTelemetry`` share: the watched validators,
    and wrapping one validator instance so each validation is timed and reported."""

    def __init__(self, clock: Callable[[], float] | None) -> None:
        self._clock = clock or time.time
        self._validators: list[Validator] = []

    def watch(self, validator: Validator) -> None:
        """Export the key-set gauges of ``validator``'s issuers whenever metrics are read."""
        if validator not in self._validators:
            self._validators.append(validator)

    def statuses(self) -> Iterator[IssuerStatus]:
        """The status of every watched issuer."""
        for validator in self._validators:
            yield from issuer_status(validator)

    def _wrap(
        self,
        validator: Validator,
        marker: str,
        record: Callable[[Any, _Validation], None],
        span: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> Validator:
        """Wrap ``validator``'s own ``validate``/``avalidate`` (this instance only, once per
        ``marker``) so each runs inside ``span()`` and is reported to ``record``."""
        self.watch(validator)
        if getattr(validator, marker, None) is self:
            return validator
        validate = validator.validate
        avalidate = validator.avalidate
        known = frozenset(issuer.issuer for issuer in validator.issuers)
        limit = validator.max_token_size
        clock = time.perf_counter

        def metered_validate(token: str | bytes, *, scopes: Iterable[str] = ()) -> Claims:
            with span() as current:
                start = clock()
                try:
                    claims = validate(token, scopes=scopes)
                except TokenError as exc:
                    record(current, _Validation(token, None, exc, clock() - start, known, limit))
                    raise
                record(current, _Validation(token, claims, None, clock() - start, known, limit))
                return claims

        async def metered_avalidate(token: str | bytes, *, scopes: Iterable[str] = ()) -> Claims:
            with span() as current:
                start = clock()
                try:
                    claims = await avalidate(token, scopes=scopes)
                except TokenError as exc:
                    record(current, _Validation(token, None, exc, clock() - start, known, limit))
                    raise
                record(current, _Validation(token, claims, None, clock() - start, known, limit))
                return claims

        attributes = vars(validator)
        attributes["validate"] = metered_validate
        attributes["avalidate"] = metered_avalidate
        attributes[marker] = self
        return validator


class PrometheusMetrics(_Instrumentation):
    """Prometheus metrics for validators and their key sources.

    Example:
        metrics = PrometheusMetrics()
        validator = Validator(..., on_event=fan_out(log_event, metrics.on_event))
        metrics.instrument(validator)

    Args:
        registry: Where the metrics are registered; default: ``prometheus_client.REGISTRY``.
            Pass a fresh ``CollectorRegistry`` per app in tests or multi-tenant processes.
        namespace: Prefix of every metric name.
        buckets: Latency histogram buckets, in seconds.
        clock: Unix time, for the key-set age gauge; default ``time.time``.
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        namespace: str = "jwkguard",
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        try:
            import prometheus_client as prom
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise missing_extra("PrometheusMetrics", "prometheus_client", "prometheus") from exc
        if registry is None:
            registry = prom.REGISTRY
        super().__init__(clock)
        self.registry = registry

        def counter(metric: _Metric) -> Counter:
            return prom.Counter(
                metric.prometheus,
                metric.description,
                metric.labels,
                namespace=namespace,
                registry=registry,
            )

        self.validations = counter(_VALIDATIONS)
        self.latency = prom.Histogram(
            _DURATION.prometheus,
            _DURATION.description,
            namespace=namespace,
            buckets=tuple(buckets),
            registry=registry,
        )
        self.jwks_fetches = counter(_JWKS_FETCHES)
        self.lifecycle_rejections = counter(_LIFECYCLE_REJECTIONS)
        self.events = counter(_EVENTS)
        self._collector = _KeySetCollector(self, namespace)
        registry.register(self._collector)
        self._valid_children: dict[str, Any] = {}
        self._observe = self.latency.observe

    # -- events ---------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """An ``EventHandler``: counts key-source and lifecycle events."""
        issuer = event.issuer
        kind = event.kind
        self.events.labels(issuer, kind).inc()
        if kind in _FETCH_SUCCESS_KINDS:
            self.jwks_fetches.labels(issuer, "success").inc()
        elif kind in _FETCH_FAILURE_KINDS:
            self.jwks_fetches.labels(issuer, "failure").inc()
        elif kind in _FETCH_NOT_MODIFIED_KINDS:
            self.jwks_fetches.labels(issuer, "not_modified").inc()

    # -- validations ----------------------------------------------------------------------

    def observe(self, issuer: str, exc: TokenError | None, seconds: float) -> None:
        """Record one validation: its issuer label, its error (None if valid) and duration."""
        self._observe(seconds)
        if exc is None:
            child = self._valid_children.get(issuer)
            if child is None:
                child = self._valid_children[issuer] = self.validations.labels(
                    issuer, "valid", "ok"
                )
            child.inc()
            return
        self.validations.labels(issuer, outcome_of(exc), exc.reason).inc()
        if isinstance(exc, LifecycleError):
            self.lifecycle_rejections.labels(issuer, exc.reason).inc()

    def instrument(self, validator: Validator) -> Validator:
        """Count and time every validation of ``validator``, and watch its key sets.

        The validator's own ``validate``/``avalidate`` are wrapped on this one instance (the
        class is untouched), so validators without metrics pay nothing. Returns the same
        validator.
        """
        return self._wrap(validator, "_jwkguard_metrics", self._record)

    def _record(self, span: object, validation: _Validation) -> None:
        self.observe(validation.issuer(), validation.error, validation.seconds)

    def now(self) -> float:
        """The metrics clock."""
        return self._clock()


class _KeySetCollector:
    """Key-set gauges computed at scrape time from the key sources' status snapshots."""

    def __init__(self, metrics: PrometheusMetrics, namespace: str) -> None:
        self._metrics = metrics
        self._prefix = f"{namespace}_" if namespace else ""

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        prefix = self._prefix
        keys, ready, age, stale = (
            GaugeMetricFamily(prefix + metric.prometheus, metric.description, labels=metric.labels)
            for metric in (_KEYS, _ISSUER_READY, _KEY_SET_AGE, _SERVING_STALE)
        )
        now = self._metrics.now()
        for status in self._metrics.statuses():
            keys.add_metric([status.issuer], len(status.thumbprints))
            ready.add_metric([status.issuer], 1.0 if status.ready else 0.0)
            stale.add_metric([status.issuer], 1.0 if status.serving_stale else 0.0)
            if status.fetched_at is not None:
                age.add_metric([status.issuer], max(0.0, now - status.fetched_at))
        yield from (keys, ready, age, stale)
