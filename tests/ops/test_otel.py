"""OpenTelemetry: a span per validation and metrics like the Prometheus ones, via the SDK's
in-memory exporter and reader."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry

from jwkguard import TokenError, Validator
from jwkguard.lifecycle import Lifecycle, LifecycleAdmin, MemoryStore, fan_out
from jwkguard.metrics import PrometheusMetrics
from jwkguard.otel import OpenTelemetry
from jwkguard.testing import LocalIssuer, generate_key, mint_token

from ..conftest import closed_after_the_test


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.otel = OpenTelemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
        """Metric ``name``'s data points by their sorted attributes."""
        data = self.reader.get_metrics_data()
        found: dict[tuple[tuple[str, Any], ...], Any] = {}
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "jwkguard"
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        key = tuple(sorted((point.attributes or {}).items()))
                        found[key] = point.value if hasattr(point, "value") else point.count
        return found

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    running = Telemetry()
    yield running
    running.shutdown()


def remote_validator(issuer: LocalIssuer, telemetry: Telemetry, **options: Any) -> Validator:
    validator = Validator(
        issuers=[issuer.issuer_config(cooldown=0, min_ttl=1, max_stale=600)],
        algorithms=["RS256"],
        on_event=telemetry.otel.on_event,
        **options,
    )
    closed_after_the_test(validator)
    return telemetry.otel.instrument(validator)


def _attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_a_valid_token_is_one_span_with_outcome_issuer_and_kid_but_never_the_token(
    local_issuer: LocalIssuer, telemetry: Telemetry
) -> None:
    validator = remote_validator(local_issuer, telemetry)
    token = local_issuer.mint(subject="alice")
    validator.validate(token)
    [span] = telemetry.finished()
    assert span.name == "jwkguard.validate"
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "jwkguard"
    assert _attributes(span) == {
        "jwkguard.outcome": "valid",
        "jwkguard.reason": "ok",
        "jwkguard.issuer": local_issuer.url,
        "jwkguard.kid": local_issuer.active_key.kid,
    }
    assert span.status.status_code is StatusCode.UNSET
    # The first validation fetched the keys: the key source's events are on the span.
    assert "jwkguard.key_added" in [event.name for event in span.events]
    recorded = repr([_attributes(span), [(e.name, e.attributes) for e in span.events]])
    for segment in token.split("."):
        assert segment not in recorded


def test_a_refused_token_carries_its_reason_and_is_not_an_error_span(
    local_issuer: LocalIssuer, telemetry: Telemetry
) -> None:
    validator = remote_validator(local_issuer, telemetry)
    expired = local_issuer.mint(now=time.time() - 7200, lifetime=60)
    with pytest.raises(TokenError):
        validator.validate(expired)
    forged = mint_token(
        generate_key("RS256", kid="evil"),
        issuer="https://evil.example/",
        audience=local_issuer.audience,
    )
    with pytest.raises(TokenError):
        validator.validate(forged)
    first, second = telemetry.finished()
    assert _attributes(first)["jwkguard.reason"] == "expired"
    assert _attributes(first)["jwkguard.outcome"] == "invalid"
    assert _attributes(first)["error.type"] == "expired"
    assert first.status.status_code is StatusCode.UNSET, "a refused token is not our error"
    assert _attributes(second)["jwkguard.issuer"] == "unknown", "labels stay bounded"
    assert _attributes(second)["jwkguard.kid"] == "evil"
    points = telemetry.points("jwkguard.validations")
    assert (
        points[
            (
                ("jwkguard.issuer", local_issuer.url),
                ("jwkguard.outcome", "invalid"),
                ("jwkguard.reason", "expired"),
            )
        ]
        == 1
    )


def test_an_outage_marks_the_span_as_an_error_with_the_fetch_failure_on_it(
    local_issuer: LocalIssuer, telemetry: Telemetry
) -> None:
    validator = remote_validator(local_issuer, telemetry)
    local_issuer.fail_with(503)
    with pytest.raises(TokenError) as caught:
        validator.validate(local_issuer.mint())
    assert caught.value.status_code == 503
    [span] = telemetry.finished()
    assert _attributes(span)["jwkguard.outcome"] == "unavailable"
    assert span.status.status_code is StatusCode.ERROR
    assert any("fail" in event.name for event in span.events)
    fetches = telemetry.points("jwkguard.jwks.fetches")
    assert fetches[(("jwkguard.issuer", local_issuer.url), ("jwkguard.outcome", "failure"))] >= 1


@pytest.mark.anyio
async def test_the_async_driver_is_traced_the_same_way(
    local_issuer: LocalIssuer, telemetry: Telemetry
) -> None:
    validator = remote_validator(local_issuer, telemetry)
    await validator.avalidate(local_issuer.mint())
    with pytest.raises(TokenError):
        await validator.avalidate(local_issuer.mint(audience="https://other.example"))
    await validator.aclose()
    ok, refused = telemetry.finished()
    assert _attributes(ok)["jwkguard.outcome"] == "valid"
    assert _attributes(refused)["jwkguard.reason"] == "audience_mismatch"


def test_metrics_mirror_the_prometheus_ones(
    local_issuer: LocalIssuer, telemetry: Telemetry
) -> None:
    store = MemoryStore()
    validator = remote_validator(local_issuer, telemetry, lifecycle=Lifecycle(store))
    token = local_issuer.mint(subject="eve", now=time.time() - 10)
    validator.validate(token)
    validator.validate(token)
    LifecycleAdmin(store).cut_off_subject("eve", issuer=local_issuer.url, by="t", why="test")
    with pytest.raises(TokenError):
        validator.validate(token)
    url = local_issuer.url
    validations = telemetry.points("jwkguard.validations")
    valid = (("jwkguard.issuer", url), ("jwkguard.outcome", "valid"), ("jwkguard.reason", "ok"))
    assert validations[valid] == 2
    rejections = telemetry.points("jwkguard.lifecycle.rejections")
    assert rejections == {(("jwkguard.issuer", url), ("jwkguard.reason", "subject_cut_off")): 1}
    assert list(telemetry.points("jwkguard.validation.duration").values()) == [3]
    fetches = telemetry.points("jwkguard.jwks.fetches")
    assert fetches[(("jwkguard.issuer", url), ("jwkguard.outcome", "success"))] == 1
    events = telemetry.points("jwkguard.events")
    assert events[(("jwkguard.issuer", url), ("jwkguard.kind", "key_added"))] == 1
    assert telemetry.points("jwkguard.keys") == {(("jwkguard.issuer", url),): 1}
    assert telemetry.points("jwkguard.issuer.ready") == {(("jwkguard.issuer", url),): 1}
    assert telemetry.points("jwkguard.serving_stale") == {(("jwkguard.issuer", url),): 0}
    [age] = telemetry.points("jwkguard.key_set.age").values()
    assert 0 <= age < 60


def test_prometheus_and_opentelemetry_can_instrument_one_validator(
    local_issuer: LocalIssuer, telemetry: Telemetry
) -> None:
    registry = CollectorRegistry()
    prometheus = PrometheusMetrics(registry=registry)
    validator = Validator(
        issuers=[local_issuer.issuer_config()],
        algorithms=["RS256"],
        on_event=fan_out(prometheus.on_event, telemetry.otel.on_event),
    )
    closed_after_the_test(validator)
    prometheus.instrument(telemetry.otel.instrument(prometheus.instrument(validator)))
    telemetry.otel.instrument(validator)  # once only
    validator.validate(local_issuer.mint())
    labels = {"issuer": local_issuer.url, "outcome": "valid", "reason": "ok"}
    assert registry.get_sample_value("jwkguard_validations_total", labels) == 1
    assert len(telemetry.finished()) == 1


def test_without_an_sdk_the_api_is_a_no_op(local_issuer: LocalIssuer) -> None:
    """Only opentelemetry-api installed and nothing configured: no spans, nothing breaks."""
    otel = OpenTelemetry()
    validator = Validator(
        issuers=[local_issuer.issuer_config()], algorithms=["RS256"], on_event=otel.on_event
    )
    closed_after_the_test(validator)
    otel.instrument(validator)
    assert validator.validate(local_issuer.mint()).subject is not None
