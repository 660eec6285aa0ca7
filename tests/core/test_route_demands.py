"""One set of route demands: RoutePolicy and the forward-auth rules share their fields."""

from __future__ import annotations

import dataclasses

import pytest

from jwkguard._forward_auth._routes import RouteRule
from jwkguard.pipeline import RouteDemands, RoutePolicy


def test_a_forward_auth_rule_demands_what_its_policy_demands() -> None:
    route = RouteRule(path="/pay", dpop=True, acr_values=("urn:mfa",), roles=frozenset({"payer"}))
    policy = RoutePolicy(scopes=route.scopes, optional=route.anonymous, **route.demands())
    assert policy.demands() == route.demands()
    assert policy.dpop
    assert policy.acr_values == ("urn:mfa",)
    assert policy.roles == {"payer"}


def test_the_demands_are_keyword_only_and_named_once() -> None:
    names = [field.name for field in dataclasses.fields(RouteDemands)]
    assert set(RouteDemands().demands()) == set(names)
    assert all(field.kw_only for field in dataclasses.fields(RouteDemands))
    assert {"scopes", "optional"}.isdisjoint(names)
    with pytest.raises(TypeError):
        RouteDemands(True)  # type: ignore[call-arg]
