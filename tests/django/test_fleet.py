"""``JWKGUARD["FLEET"]`` and ``JWKGUARD["METRICS"]``: checks, the built state, the metrics view.

Revocations enforced by every worker of a pre-fork server are in
``tests/lifecycle/test_gunicorn.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.http import Http404
from django.test import RequestFactory, override_settings

from jwkguard.fleet import Fleet, RedisReplayLedger
from jwkguard.testing import LocalIssuer
from jwkguard_django import conf
from jwkguard_django.views import metrics

from .conftest import jwkguard_settings

FLEET = {"REDIS_URL": "redis://127.0.0.1:1/0", "ON_UNAVAILABLE": "fail_closed"}


def errors(settings: dict[str, Any]) -> dict[str, str]:
    with override_settings(JWKGUARD=settings):
        return {m.id or "": m.msg for m in run_checks() if m.id and m.id.startswith("jwkguard.")}


def test_fleet_and_metrics_are_known_settings_checked_by_manage_py_check(
    issuer: LocalIssuer,
) -> None:
    assert errors(jwkguard_settings(issuer, FLEET=FLEET, METRICS=True)) == {}
    bad = errors(jwkguard_settings(issuer, FLEET={**FLEET, "PREFX": "x:"}))
    assert "did you mean PREFIX" in bad["jwkguard.E008"]
    both = errors(jwkguard_settings(issuer, FLEET=FLEET, LIFECYCLE="jwkguard.lifecycle.Lifecycle"))
    assert "not both" in both["jwkguard.E008"]
    assert "METRICS" in errors(jwkguard_settings(issuer, METRICS=42))["jwkguard.E008"]


def test_the_state_carries_a_lazily_started_fleet_wired_into_the_validator(
    issuer: LocalIssuer,
) -> None:
    with override_settings(JWKGUARD=jwkguard_settings(issuer, FLEET=FLEET, DPOP=True)):
        state = conf.get_state()
        assert isinstance(state.fleet, Fleet)
        assert state.fleet.store._thread is None  # nothing started until first used
        assert state.validator.lifecycle is state.fleet.lifecycle
        assert state.fleet.lifecycle.reuse is not None  # reuse alerts on by default
        dpop = state.options.sender.constraints.dpop
        assert dpop is not None
        assert isinstance(dpop.replay, RedisReplayLedger)


def test_the_metrics_view_serves_prometheus_text_or_404(issuer: LocalIssuer) -> None:
    request = RequestFactory().get("/metrics")
    with override_settings(JWKGUARD=jwkguard_settings(issuer, METRICS=True)):
        response = metrics(request)
        assert response.status_code == 200
        assert b"jwkguard_validation_duration_seconds" in response.content
    with override_settings(JWKGUARD=jwkguard_settings(issuer)), pytest.raises(Http404):
        metrics(request)
