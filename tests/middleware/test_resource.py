"""RFC 9728 metadata and RFC 9470 step-up in ``jwkguard.asgi`` and ``jwkguard.wsgi``, over HTTP.

Litestar (uvicorn) and Falcon (waitress) behind the framework-free middlewares: the metadata
document at the well-known path without a token, ``resource_metadata`` in every challenge,
step-up refusals with ``acr_values`` and ``max_age``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jwkguard import Validator

from ..conftest import ISSUER
from .apps import falcon_app, litestar_app
from .conftest import WaitressServer, serve_asgi

RESOURCE = "https://api.example.com"
METADATA_PATH = "/.well-known/oauth-protected-resource"
METADATA_PARAM = f'resource_metadata="https://api.example.com{METADATA_PATH}"'
OPTIONS: dict[str, Any] = {"resource": RESOURCE, "acr_values": ["urn:mfa"], "max_age": 300}


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def base_url(request: pytest.FixtureRequest, validator: Validator) -> Iterator[str]:
    if request.param == "asgi":
        server: Any = serve_asgi("uvicorn", litestar_app(validator, **OPTIONS))
    else:
        server = WaitressServer(falcon_app(validator, **OPTIONS))
    with server as running:
        yield running.url


def test_the_document_is_served_without_a_token(base_url: str) -> None:
    answer = httpx.get(base_url + METADATA_PATH)
    assert answer.status_code == 200
    assert answer.json() == {
        "resource": RESOURCE,
        "authorization_servers": [ISSUER],
        "bearer_methods_supported": ["header"],
    }
    assert answer.headers["access-control-allow-origin"] == "*"
    head = httpx.head(base_url + METADATA_PATH)
    assert head.status_code == 200
    assert head.content == b""


def test_a_post_to_the_well_known_path_still_needs_a_token(base_url: str) -> None:
    assert httpx.post(base_url + METADATA_PATH).status_code == 401


def test_the_missing_token_challenge_names_the_metadata(base_url: str) -> None:
    answer = httpx.get(base_url + "/whoami")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == f'Bearer realm="api", {METADATA_PARAM}'


def test_a_weak_login_gets_the_step_up_challenge(base_url: str, mint: Any) -> None:
    answer = httpx.get(base_url + "/whoami", headers={"Authorization": f"Bearer {mint()}"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == (
        'Bearer realm="api", error="insufficient_user_authentication", '
        'error_description="The user must authenticate with a stronger method", '
        f'acr_values="urn:mfa", max_age="300", {METADATA_PARAM}'
    )


def test_a_strong_recent_login_passes(base_url: str, mint: Any) -> None:
    token = mint(acr="urn:mfa", auth_time=int(time.time()) - 5)
    answer = httpx.get(base_url + "/whoami", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.json() == {"subject": "user-123"}
