"""Prometheus metrics: validations, latency, JWKS fetches, key-set gauges, lifecycle rejections."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from jwkguard import Issuer, TokenError, Validator, log_event
from jwkguard.lifecycle import Lifecycle, LifecycleAdmin, MemoryStore, fan_out
from jwkguard.metrics import PrometheusMetrics
from jwkguard.testing import LocalIssuer

from ..conftest import closed_after_the_test


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> PrometheusMetrics:
    return PrometheusMetrics(registry=registry)


def remote_validator(issuer: LocalIssuer, metrics: PrometheusMetrics, **options: Any) -> Validator:
    validator = Validator(
        issuers=[issuer.issuer_config(cooldown=0, min_ttl=1, max_stale=600)],
        algorithms=["RS256"],
        on_event=fan_out(log_event, metrics.on_event),
        **options,
    )
    return closed_after_the_test(validator)


def test_validations_are_counted_by_issuer_outcome_and_reason(
    local_issuer: LocalIssuer, metrics: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    validator = metrics.instrument(remote_validator(local_issuer, metrics))
    validator.validate(local_issuer.mint())
    validator.validate(local_issuer.mint())
    with pytest.raises(TokenError):
        validator.validate(local_issuer.mint(now=time.time() - 3600, lifetime=60))
    with pytest.raises(TokenError):
        validator.validate(local_issuer.mint(scopes=["a"]), scopes=["b"])
    url = local_issuer.url
    name = "jwkguard_validations_total"
    assert value(registry, name, issuer=url, outcome="valid", reason="ok") == 2
    assert value(registry, name, issuer=url, outcome="invalid", reason="expired") == 1
    assert value(registry, name, issuer=url, outcome="forbidden", reason="insufficient_scope") == 1
    assert value(registry, "jwkguard_validation_duration_seconds_count") == 4


@pytest.mark.anyio
async def test_async_validations_are_counted_too(
    local_issuer: LocalIssuer, metrics: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    validator = metrics.instrument(remote_validator(local_issuer, metrics))
    await validator.avalidate(local_issuer.mint())
    labels = {"issuer": local_issuer.url, "outcome": "valid", "reason": "ok"}
    assert value(registry, "jwkguard_validations_total", **labels) == 1
    await validator.aclose()


def test_untrusted_issuers_share_one_label(
    local_issuer: LocalIssuer, metrics: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    validator = metrics.instrument(remote_validator(local_issuer, metrics))
    for n in range(3):
        with pytest.raises(TokenError):
            validator.validate(local_issuer.mint(issuer=f"https://attacker-{n}.example/"))
    with pytest.raises(TokenError):
        validator.validate("garbage")
    labels = {"issuer": "unknown", "outcome": "invalid"}
    assert value(registry, "jwkguard_validations_total", reason="issuer_mismatch", **labels) == 3
    assert value(registry, "jwkguard_validations_total", reason="malformed", **labels) == 1


def test_jwks_fetches_and_key_set_gauges(
    local_issuer: LocalIssuer, metrics: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    validator = metrics.instrument(remote_validator(local_issuer, metrics))
    validator.validate(local_issuer.mint())
    url = local_issuer.url
    assert value(registry, "jwkguard_jwks_fetches_total", issuer=url, outcome="success") == 1
    assert value(registry, "jwkguard_keys", issuer=url) == 1
    assert value(registry, "jwkguard_issuer_ready", issuer=url) == 1
    assert value(registry, "jwkguard_serving_stale", issuer=url) == 0
    assert 0 <= value(registry, "jwkguard_key_set_age_seconds", issuer=url) < 5
    kind = {"issuer": url, "kind": "key_added"}
    assert value(registry, "jwkguard_events_total", **kind) == 1


def test_failed_refreshes_and_serving_stale_show(
    local_issuer: LocalIssuer, registry: CollectorRegistry
) -> None:
    now = [time.time()]
    metrics = PrometheusMetrics(registry=registry, clock=lambda: now[0])
    validator = Validator(
        issuers=[local_issuer.issuer_config(min_ttl=1, max_stale=600)],
        algorithms=["RS256"],
        clock=lambda: now[0],
        on_event=metrics.on_event,
    )
    closed_after_the_test(metrics.instrument(validator))
    token = local_issuer.mint(lifetime=3600)
    validator.validate(token)
    with local_issuer.outage():
        now[0] += 400  # past the cache lifetime (max-age=300): a refresh is due and fails
        validator.validate(token)
    url = local_issuer.url
    assert value(registry, "jwkguard_jwks_fetches_total", issuer=url, outcome="failure") >= 1
    assert value(registry, "jwkguard_serving_stale", issuer=url) == 1
    assert value(registry, "jwkguard_key_set_age_seconds", issuer=url) >= 400


def test_lifecycle_rejections_are_counted(
    local_issuer: LocalIssuer, metrics: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    store = MemoryStore()
    validator = metrics.instrument(
        remote_validator(local_issuer, metrics, lifecycle=Lifecycle(store))
    )
    token = local_issuer.mint(subject="eve", now=time.time() - 10)
    validator.validate(token)
    LifecycleAdmin(store).cut_off_subject("eve", issuer=local_issuer.url, by="t", why="test")
    with pytest.raises(TokenError):
        validator.validate(token)
    labels = {"issuer": local_issuer.url, "reason": "subject_cut_off"}
    assert value(registry, "jwkguard_lifecycle_rejections_total", **labels) == 1


def test_instrumenting_wraps_only_that_instance_and_only_once(
    local_issuer: LocalIssuer, metrics: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    plain = remote_validator(local_issuer, metrics)
    metered = remote_validator(local_issuer, metrics)
    assert metrics.instrument(metered) is metered
    metrics.instrument(metered)
    assert "validate" not in vars(plain)
    assert type(plain).validate is Validator.validate
    metered.validate(local_issuer.mint())
    plain.validate(local_issuer.mint())
    labels = {"issuer": local_issuer.url, "outcome": "valid", "reason": "ok"}
    assert value(registry, "jwkguard_validations_total", **labels) == 1


def test_static_keys_report_ready_without_an_age(
    local_issuer: LocalIssuer, metrics: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    static = Validator(
        issuers=[Issuer("https://static.example/", audiences=["a"], jwks=local_issuer.jwks())],
        algorithms=["RS256"],
    )
    metrics.watch(static)
    assert value(registry, "jwkguard_issuer_ready", issuer="https://static.example/") == 1
    assert (
        registry.get_sample_value(
            "jwkguard_key_set_age_seconds", {"issuer": "https://static.example/"}
        )
        is None
    )
