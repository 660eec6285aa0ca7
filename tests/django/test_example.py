"""End to end: the example project over real HTTP on 127.0.0.1, under WSGI and ASGI.

waitress serves ``example.wsgi`` (the middleware's sync path, keys from ``JWKS_URI``) and
uvicorn serves ``example.asgi`` (the async path, keys found through discovery), both against a
real local issuer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jwkguard.testing import LocalIssuer

from ..helpers import bearer_from
from ..servers import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django_project"
STARTUP_TIMEOUT = 30.0


def command(kind: str, port: int) -> list[str]:
    if kind == "wsgi":
        return [
            sys.executable,
            "-m",
            "waitress",
            f"--listen=127.0.0.1:{port}",
            "--threads=4",
            "example.wsgi:application",
        ]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "example.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--no-access-log",
    ]


def wait_until_serving(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"the example server exited early:\n{output}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"the example server did not answer within {STARTUP_TIMEOUT} s")


@pytest.fixture(scope="module")
def example_issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as issuer:
        yield issuer


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def server(
    request: pytest.FixtureRequest, example_issuer: LocalIssuer
) -> Iterator[tuple[str, str]]:
    """``(kind, base_url)`` of the example project served by waitress or uvicorn."""
    kind = request.param
    port = free_port()
    env = {
        **os.environ,
        "JWKGUARD_ISSUER": example_issuer.url,
        "JWKGUARD_AUDIENCES": example_issuer.audience,
        "PYTHONUNBUFFERED": "1",
    }
    if kind == "wsgi":
        env["JWKGUARD_JWKS_URI"] = example_issuer.jwks_uri
    else:
        env.pop("JWKGUARD_JWKS_URI", None)
    process = subprocess.Popen(
        command(kind, port), cwd=EXAMPLE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, url)
        yield kind, url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def auth(issuer: LocalIssuer, *scopes: str, subject: str = "alice") -> dict[str, str]:
    return bearer_from(issuer, subject=subject, scopes=list(scopes))


def test_health_needs_no_token(server: tuple[str, str]) -> None:
    _, url = server
    assert httpx.get(f"{url}/health").json()["ok"] is True


def test_no_token_gets_the_bearer_challenge(server: tuple[str, str]) -> None:
    _, url = server
    response = httpx.get(f"{url}/api/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["reason"] == "missing_token"


def test_valid_token_reaches_the_sync_view_through_the_servers_path(
    server: tuple[str, str], example_issuer: LocalIssuer
) -> None:
    kind, url = server
    response = httpx.get(f"{url}/api/me", headers=auth(example_issuer, "profile"))
    assert response.status_code == 200
    assert response.json() == {
        "sub": "alice",
        "scopes": ["profile"],
        "user": "alice",
        "server": kind,
    }


def test_valid_token_reaches_the_async_view(
    server: tuple[str, str], example_issuer: LocalIssuer
) -> None:
    kind, url = server
    response = httpx.get(f"{url}/api/async-me", headers=auth(example_issuer, subject="bea"))
    assert response.status_code == 200
    assert response.json()["user"] == "bea"
    assert response.json()["server"] == kind


def test_invalid_token_is_refused(server: tuple[str, str], example_issuer: LocalIssuer) -> None:
    _, url = server
    expired = example_issuer.mint(now=1_000_000_000)
    response = httpx.get(f"{url}/api/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.json()["reason"] == "expired"


def test_scoped_view_and_bearer_post_without_csrf_token(
    server: tuple[str, str], example_issuer: LocalIssuer
) -> None:
    _, url = server
    assert httpx.get(f"{url}/api/orders", headers=auth(example_issuer)).status_code == 403
    assert (
        httpx.get(f"{url}/api/orders", headers=auth(example_issuer, "orders:read")).status_code
        == 200
    )
    created = httpx.post(f"{url}/api/orders", headers=auth(example_issuer, "orders:read"))
    assert created.status_code == 201
    assert created.json()["created_by"] == "alice"


def test_drf_viewset(server: tuple[str, str], example_issuer: LocalIssuer) -> None:
    _, url = server
    anonymous = httpx.get(f"{url}/api/v2/orders")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert (
        httpx.get(f"{url}/api/v2/orders", headers=auth(example_issuer, "orders:read")).status_code
        == 200
    )
    reader = httpx.post(f"{url}/api/v2/orders", headers=auth(example_issuer, "orders:read"))
    assert reader.status_code == 403
    assert 'scope="orders:write"' in reader.headers["WWW-Authenticate"]
    writer = httpx.post(f"{url}/api/v2/orders", headers=auth(example_issuer, "orders:write"))
    assert writer.status_code == 201


def test_many_concurrent_requests_all_succeed(
    server: tuple[str, str], example_issuer: LocalIssuer
) -> None:
    _, url = server
    headers = auth(example_issuer, "orders:read")

    async def burst() -> list[int]:
        import asyncio

        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            responses = await asyncio.gather(
                *(client.get("/api/v2/orders", headers=headers) for _ in range(40))
            )
        return [response.status_code for response in responses]

    import asyncio

    assert asyncio.run(burst()) == [200] * 40
