"""Introspection against a real authorization server: panva's node-oidc-provider on 127.0.0.1.

The server (``oidc_provider/server.mjs``) issues client-credentials tokens, JWT access tokens
for one resource and opaque ones for another, and serves RFC 7662 introspection and RFC 7009
revocation. It refuses to introspect its own JWT access tokens (``400 unsupported_token_type``),
the hybrid-mode case a client must not be able to turn into an outage.

The package is installed from the committed ``package-lock.json`` into
``test-artifacts/cache/`` (gitignored) on first use. Without ``node``/``npm`` the tests skip
locally and fail under ``JWKGUARD_REQUIRE_BINARIES`` (CI).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from jwkguard import Event, Issuer, RequestPipeline, RoutePolicy, TokenError, Validator
from jwkguard.sender._introspection import Introspector

from ..conftest import closed_after_the_test, require_binary
from ..servers import free_port, stop_process
from .kit import bearer_view

HERE = Path(__file__).resolve().parent / "oidc_provider"
CACHE = Path(__file__).resolve().parents[2] / "test-artifacts" / "cache"
JWT_RESOURCE = "https://api.example.com"
OPAQUE_RESOURCE = "https://opaque.example.com"
RS_SECRET = "rs-secret-for-tests"
APP_SECRET = "app-secret-for-tests"


def _install(npm: str) -> Path:
    """node_modules for the locked oidc-provider, installed once per lock file."""
    lock = (HERE / "package-lock.json").read_bytes()
    target = CACHE / f"oidc-provider-{hashlib.sha256(lock).hexdigest()[:12]}"
    marker = target / "node_modules" / "oidc-provider" / "package.json"
    if not marker.exists():
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(HERE / name, target / name)
        try:
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                cwd=target,
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
        except subprocess.TimeoutExpired:
            result = None
        if result is None or result.returncode != 0 or not marker.exists():
            output = "timed out" if result is None else (result.stdout + result.stderr)[-2000:]
            message = f"npm ci of oidc-provider failed (is the npm registry reachable?): {output}"
            if os.environ.get("JWKGUARD_REQUIRE_BINARIES"):
                pytest.fail(message)
            pytest.skip(message)
    shutil.copyfile(HERE / "server.mjs", target / "server.mjs")
    return target


@dataclass
class Provider:
    url: str
    process: subprocess.Popen[str]

    @property
    def introspection_endpoint(self) -> str:
        return f"{self.url}/token/introspection"

    def token(self, resource: str = JWT_RESOURCE) -> str:
        response = httpx.post(
            f"{self.url}/token",
            auth=("app", APP_SECRET),
            data={"grant_type": "client_credentials", "scope": "orders:read", "resource": resource},
            timeout=5,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def revoke(self, token: str) -> None:
        response = httpx.post(
            f"{self.url}/token/revocation", auth=("app", APP_SECRET), data={"token": token}
        )
        assert response.status_code == 200, response.text


def _start(directory: Path, node: str) -> Provider:
    port = free_port()
    process = subprocess.Popen(
        [node, "server.mjs", str(port)],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"oidc-provider exited: {stop_process(process)}")
        try:
            if httpx.get(f"{url}/.well-known/openid-configuration", timeout=1).status_code == 200:
                return Provider(url, process)
        except httpx.HTTPError:
            time.sleep(0.1)
    output = stop_process(process)
    raise AssertionError(f"oidc-provider did not answer within 20 s: {output}")


@pytest.fixture(scope="module")
def installed() -> tuple[Path, str]:
    node = require_binary("node")
    return _install(require_binary("npm")), node


@pytest.fixture(scope="module")
def provider(installed: tuple[Path, str]) -> Iterator[Provider]:
    running = _start(*installed)
    try:
        yield running
    finally:
        stop_process(running.process)


def _introspector(provider: Provider, events: list[Event], **options: Any) -> Introspector:
    options.setdefault("client_secret", RS_SECRET)
    introspector = Introspector(
        endpoint=provider.introspection_endpoint,
        client_id="resource-server",
        timeout=3,
        failure_threshold=3,
        on_event=events.append,
        **options,
    )
    return closed_after_the_test(introspector)


def _validator(provider: Provider) -> Validator:
    return Validator(
        issuers=[Issuer(provider.url, audiences=[JWT_RESOURCE], jwks_uri=f"{provider.url}/jwks")],
        algorithms=["RS256"],
    )


def test_an_opaque_token_is_active_until_revoked_at_the_server(provider: Provider) -> None:
    events: list[Event] = []
    token = provider.token(OPAQUE_RESOURCE)
    claims = _introspector(provider, events).introspect(token)
    assert claims is not None
    assert claims["client_id"] == "app"
    assert claims.scopes == frozenset({"orders:read"})
    provider.revoke(token)
    with pytest.raises(TokenError) as caught:
        _introspector(provider, events).introspect(token)  # a fresh cache
    assert (caught.value.status_code, caught.value.reason) == (401, "inactive")


def test_junk_and_oversized_tokens_never_open_the_breaker(provider: Provider) -> None:
    """The server answers junk with ``active: false`` and a token too large to parse with
    ``400 invalid_request``: both are about the token, so neither counts as a failure."""
    events: list[Event] = []
    introspector = _introspector(provider, events)
    for n in range(5):
        with pytest.raises(TokenError) as caught:
            introspector.introspect(f"junk-{n}")
        assert caught.value.reason == "inactive"
    for n in range(5):
        with pytest.raises(TokenError) as caught:
            introspector.introspect(f"{n}" + "a" * 200_000)
        assert (caught.value.status_code, caught.value.reason) == (401, "introspection_refused")
    assert not introspector.breaker_open
    assert introspector.introspect(provider.token(OPAQUE_RESOURCE)) is not None
    refused = [e for e in events if e.kind == "introspection_refused"]
    assert len(refused) == 5
    assert refused[0].detail["status"] == 400
    assert refused[0].detail["error"] == "invalid_request"


@pytest.mark.parametrize("fail_open", [False, True], ids=["fail_closed", "fail_open"])
def test_hybrid_a_jwt_the_server_will_not_introspect_is_refused_not_waved_through(
    provider: Provider, fail_open: bool
) -> None:
    """oidc-provider answers ``400 unsupported_token_type`` for its own JWT access tokens. A
    hybrid route asked for a revocation check it cannot have: the token is refused under
    either policy (fail-open covers outages only), and the breaker stays closed."""
    events: list[Event] = []
    validator = _validator(provider)
    introspector = _introspector(provider, events, fail_open=fail_open)
    pipeline = RequestPipeline(validator, introspector=introspector)
    token = provider.token()
    local = pipeline.run(bearer_view(token), RoutePolicy())
    assert local.allowed, local.response
    for _ in range(5):
        decision = pipeline.run(bearer_view(provider.token()), RoutePolicy(introspect=True))
        assert decision.response is not None
        assert decision.response.status_code == 401
        assert decision.response.body["reason"] == "introspection_refused"
    assert not introspector.breaker_open
    assert {e.detail.get("error") for e in events} == {"unsupported_token_type"}
    opaque = pipeline.run(bearer_view(provider.token(OPAQUE_RESOURCE)), RoutePolicy())
    assert opaque.allowed, "the endpoint still answers for opaque tokens"
    validator.close()


@pytest.mark.parametrize("fail_open", [False, True], ids=["fail_closed", "fail_open"])
def test_a_wrong_client_secret_is_503_rejected_and_never_fails_open(
    provider: Provider, fail_open: bool
) -> None:
    events: list[Event] = []
    introspector = _introspector(
        provider,
        events,
        client_secret="wrong",
        fail_open=fail_open,
    )
    for _ in range(4):
        with pytest.raises(TokenError) as caught:
            introspector.introspect(provider.token(OPAQUE_RESOURCE))
        assert (caught.value.status_code, caught.value.reason) == (503, "introspection_rejected")
    assert not introspector.breaker_open
    assert events[0].detail["status"] == 401
    assert events[0].detail["error"] == "invalid_client"


def test_a_stopped_server_is_an_outage_the_breaker_counts(installed: tuple[Path, str]) -> None:
    events: list[Event] = []
    provider = _start(*installed)
    try:
        token = provider.token(OPAQUE_RESOURCE)
        introspector = _introspector(provider, events, fail_open=True, reset_after=60)
        assert introspector.introspect(token) is not None
    finally:
        stop_process(provider.process)
    for _ in range(3):
        assert introspector.introspect("another-token") is None  # fail-open: the caller decides
    assert introspector.breaker_open
    assert [e.kind for e in events] == ["introspection_unavailable"]
