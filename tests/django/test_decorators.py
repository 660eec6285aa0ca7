"""token_required / token_optional / token_exempt on function, async and class-based views."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import AsyncClient, Client, override_settings
from django.views import View

from jwkguard.testing import LocalIssuer
from jwkguard_django.decorators import POLICY_ATTRIBUTE, token_exempt, token_required

from .conftest import MIDDLEWARE, Fetch, jwkguard_settings
from .spy import PathSpy

WITHOUT_MIDDLEWARE = [m for m in MIDDLEWARE if "jwkguard" not in m]


@pytest.fixture(params=["middleware-optional", "no-middleware"])
def layout(request: pytest.FixtureRequest, issuer: LocalIssuer) -> Any:
    """The decorators alone decide: with the middleware in optional mode, or without it."""
    if request.param == "no-middleware":
        overrides = override_settings(MIDDLEWARE=WITHOUT_MIDDLEWARE)
    else:
        overrides = override_settings(JWKGUARD=jwkguard_settings(issuer, MODE="optional"))
    with overrides:
        yield request.param


SCOPED_VIEWS = ["/required", "/arequired", "/cbv", "/acbv", "/cbv-asview"]


@pytest.mark.parametrize("path", SCOPED_VIEWS)
def test_token_required_refuses_a_request_without_token(
    fetch: Fetch, layout: str, path: str
) -> None:
    response = fetch.get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["reason"] == "missing_token"


@pytest.mark.parametrize("path", SCOPED_VIEWS)
def test_token_required_refuses_missing_scopes_with_403(
    fetch: Fetch, layout: str, bearer: Any, path: str
) -> None:
    response = fetch.get(path, headers=bearer(scopes=["profile"]))
    assert response.status_code == 403
    assert response["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="The access token lacks a required scope", scope="orders:read"'
    )
    assert response.json()["error"] == "insufficient_scope"


@pytest.mark.parametrize("path", SCOPED_VIEWS)
def test_token_required_serves_a_token_with_the_scopes(
    fetch: Fetch, layout: str, bearer: Any, path: str
) -> None:
    response = fetch.get(path, headers=bearer(subject="erin", scopes=["orders:read", "x"]))
    assert response.status_code == 200
    assert response.json() == {"sub": "erin", "auth_is_claims": True, "user": "erin"}


@pytest.mark.parametrize("path", SCOPED_VIEWS)
def test_token_required_refuses_an_invalid_token(fetch: Fetch, layout: str, path: str) -> None:
    response = fetch.get(path, headers={"Authorization": "Bearer a.b.c"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_bare_token_required_needs_only_a_valid_token(
    fetch: Fetch, layout: str, bearer: Any
) -> None:
    assert fetch.get("/required-bare").status_code == 401
    assert fetch.get("/required-bare", headers=bearer()).status_code == 200


def test_method_decorator_on_dispatch_applies_the_scopes(
    fetch: Fetch, layout: str, bearer: Any
) -> None:
    assert fetch.get("/cbv-method", headers=bearer(scopes=["orders:read"])).status_code == 403
    assert fetch.get("/cbv-method", headers=bearer(scopes=["orders:write"])).status_code == 200


@pytest.mark.parametrize("path", ["/optional", "/aoptional"])
def test_token_optional_serves_anonymous_and_authenticated_requests(
    fetch: Fetch, layout: str, bearer: Any, path: str
) -> None:
    assert fetch.get(path).json()["sub"] is None
    assert fetch.get(path, headers=bearer(subject="finn")).json()["sub"] == "finn"


@pytest.mark.parametrize("path", ["/optional", "/aoptional"])
def test_token_optional_refuses_an_invalid_token(fetch: Fetch, layout: str, path: str) -> None:
    response = fetch.get(path, headers={"Authorization": "Bearer a.b.c"})
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/exempt", "/aexempt", "/cbv-public"])
def test_token_exempt_views_pass_even_in_protect_mode(fetch: Fetch, path: str) -> None:
    assert fetch.get(path).status_code == 200
    assert fetch.get(path, headers={"Authorization": "Bearer a.b.c"}).status_code == 200


@pytest.mark.parametrize("path", ["/optional", "/aoptional"])
def test_token_optional_views_pass_anonymous_requests_in_protect_mode(
    fetch: Fetch, path: str
) -> None:
    assert fetch.get(path).status_code == 200


def test_decorators_validate_with_the_sync_driver_in_sync_views(
    issuer: LocalIssuer, bearer: Any
) -> None:
    spy = PathSpy()
    settings = jwkguard_settings(issuer, LIFECYCLE=spy)
    with override_settings(JWKGUARD=settings, MIDDLEWARE=WITHOUT_MIDDLEWARE):
        response = Client().get("/required", headers=bearer(scopes=["orders:read"]))
    assert response.status_code == 200
    assert (spy.sync_calls, spy.async_calls) == (1, 0)


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/arequired", "/acbv"])
async def test_decorators_validate_with_the_async_driver_in_async_views(
    issuer: LocalIssuer, bearer: Any, path: str
) -> None:
    spy = PathSpy()
    settings = jwkguard_settings(issuer, LIFECYCLE=spy)
    with override_settings(JWKGUARD=settings, MIDDLEWARE=WITHOUT_MIDDLEWARE):
        response = await AsyncClient().get(path, headers=bearer(scopes=["orders:read"]))
    assert response.status_code == 200
    assert (spy.sync_calls, spy.async_calls) == (0, 1)


def test_decorators_mark_the_view_for_the_middleware() -> None:
    from .project import views

    assert getattr(views.required, POLICY_ATTRIBUTE).scopes == frozenset({"orders:read"})
    assert getattr(views.OrdersView.as_view(), POLICY_ATTRIBUTE).kind == "required"
    assert getattr(views.PublicView.as_view(), POLICY_ATTRIBUTE).kind == "exempt"
    assert views.required.csrf_exempt is True  # type: ignore[attr-defined]
    assert not hasattr(views.optional, "csrf_exempt")


def test_decorators_keep_the_view_name_and_docstring() -> None:
    from .project import views

    assert views.submit.__name__ == "submit"
    assert views.required.__name__ == "required"
    assert views.arequired.__name__ == "arequired"


def test_scopes_given_as_one_string_are_refused() -> None:
    with pytest.raises(TypeError, match="list of scope names"):
        token_required(scopes="orders:read")


def test_decorating_a_class_that_is_not_a_view_is_refused() -> None:
    class NotAView:
        pass

    with pytest.raises(TypeError, match="View subclasses"):
        token_exempt(NotAView)


def test_decorating_a_view_class_keeps_it_a_view() -> None:
    @token_required(scopes=["a"])
    class Decorated(View):
        def get(self, request: Any) -> Any:
            raise AssertionError("not called")

    assert issubclass(Decorated, View)
    assert getattr(Decorated.dispatch, POLICY_ATTRIBUTE).scopes == frozenset({"a"})
