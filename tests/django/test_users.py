"""request.user and request.auser: the token user by default, a Django user with a loader."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client, override_settings

from jwkguard import Claims
from jwkguard.testing import LocalIssuer
from jwkguard_django.users import TokenUser

from . import spy
from .conftest import Fetch, close_thread_connections, jwkguard_settings

LOADER = "jwkguard_django.users.user_from_subject"


def claims(**payload: Any) -> Claims:
    payload.setdefault("iss", "https://id.example.com/")
    return Claims(payload, header={}, key_id=None, thumbprint="t", scopes=frozenset({"a"}))


def test_default_user_is_a_token_user(fetch: Fetch, bearer: Any) -> None:
    response = fetch.get("/whoami", headers=bearer(subject="jane"))
    assert response.json() == {"type": "TokenUser", "username": "jane", "authenticated": True}


@pytest.mark.anyio
async def test_auser_gives_the_token_user_in_async_views(bearer: Any) -> None:
    response = await AsyncClient().get("/awhoami", headers=bearer(subject="kim"))
    assert response.json() == {"type": "TokenUser", "username": "kim", "authenticated": True}


def test_loader_maps_the_subject_to_a_django_user(
    fetch: Fetch, issuer: LocalIssuer, bearer: Any
) -> None:
    user = get_user_model().objects.create_user("lena")
    try:
        with override_settings(JWKGUARD=jwkguard_settings(issuer, USER_LOADER=LOADER)):
            response = fetch.get("/whoami", headers=bearer(subject="lena"))
    finally:
        user.delete()
    assert response.json() == {"type": "User", "username": "lena", "authenticated": True}


@pytest.mark.anyio
async def test_auser_runs_the_loader_without_blocking_the_loop(
    issuer: LocalIssuer, bearer: Any
) -> None:
    user = await sync_to_async(get_user_model().objects.create_user)("milo")
    try:
        with override_settings(JWKGUARD=jwkguard_settings(issuer, USER_LOADER=LOADER)):
            response = await AsyncClient().get("/awhoami", headers=bearer(subject="milo"))
    finally:
        await sync_to_async(user.delete)()
        await sync_to_async(close_thread_connections)()
    assert response.json() == {"type": "User", "username": "milo", "authenticated": True}


def test_unknown_subject_gives_an_anonymous_user(
    fetch: Fetch, issuer: LocalIssuer, bearer: Any
) -> None:
    with override_settings(JWKGUARD=jwkguard_settings(issuer, USER_LOADER=LOADER)):
        response = fetch.get("/whoami", headers=bearer(subject="nobody"))
    assert response.json() == {"type": "AnonymousUser", "username": "", "authenticated": False}


def test_loader_runs_only_when_the_view_reads_the_user(issuer: LocalIssuer, bearer: Any) -> None:
    spy.loaded.clear()
    settings = jwkguard_settings(issuer, USER_LOADER="tests.django.spy.counting_loader")
    with override_settings(JWKGUARD=settings):
        Client().get("/health", headers=bearer(subject="olga"))
        assert Client().get("/subject", headers=bearer(subject="olga")).json()["sub"] == "olga"
        assert spy.loaded == []
        Client().get("/whoami", headers=bearer(subject="olga"))
    assert spy.loaded == ["olga"]


def test_token_user_holds_scopes_not_permissions() -> None:
    user = TokenUser(claims(sub="p"))
    assert user.is_authenticated
    assert not user.is_anonymous
    assert user.get_username() == "p" == str(user)
    assert user.scopes == frozenset({"a"})
    assert not user.has_perm("app.view_thing")
    assert not user.has_perms(["app.view_thing"])
    assert user.has_perms([])
    assert not user.has_module_perms("app")


def test_token_users_are_equal_per_issuer_and_subject() -> None:
    assert TokenUser(claims(sub="p")) == TokenUser(claims(sub="p"))
    assert TokenUser(claims(sub="p")) != TokenUser(claims(sub="p", iss="https://other/"))
    assert len({TokenUser(claims(sub="p")), TokenUser(claims(sub="p"))}) == 1


def test_token_user_without_subject_is_named_after_the_client() -> None:
    assert TokenUser(claims(client_id="svc")).username == "svc"
