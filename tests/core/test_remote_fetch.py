"""Fetch guards and failures over real HTTP, for both drivers: every fault keeps the last good
keys (or answers 503 when there are none) and is reported with a stable error kind."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from jwkguard import KeysUnavailable
from jwkguard.testing import LocalIssuer

from ..conftest import FakeClock
from ._remote_support import JWKS, Events, remote_validator, token

Fault = Callable[[LocalIssuer], None]


@pytest.fixture(scope="module")
def shared_issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as issuer:
        yield issuer


@pytest.fixture
def local_issuer(shared_issuer: LocalIssuer) -> Iterator[LocalIssuer]:
    """One issuer for the module (key generation is slow), reset around every test."""
    shared_issuer.requests.clear()
    yield shared_issuer
    shared_issuer.heal()
    shared_issuer.routes.clear()
    shared_issuer.jwks_paths.clear()


def _endless_body(handler: BaseHTTPRequestHandler, body: bytes) -> None:
    """200 with no Content-Length, then far more than any limit, until the client hangs up."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.close_connection = True
    try:
        handler.wfile.write(b'{"keys": [')
        for _ in range(4096):
            handler.wfile.write(b" " * 1024)
    except OSError:
        pass


def _stream_without_length(issuer: LocalIssuer) -> None:
    issuer.routes[JWKS] = _endless_body


def _many_keys(issuer: LocalIssuer) -> None:
    jwk = dict(issuer.active_key.public_jwk)
    issuer.serve_body(json.dumps({"keys": [jwk] * 101}).encode())


FAULTS: dict[str, tuple[Fault, str]] = {
    "503": (lambda i: i.fail_with(503), "http_status"),
    "404": (lambda i: i.fail_with(404), "http_status"),
    "hang": (lambda i: i.hang(10), "timeout"),
    "slow body": (lambda i: i.slow_body(4), "timeout"),
    "oversized": (lambda i: i.serve_body(b'{"keys": [' + b" " * 600_000 + b"]}"), "too_large"),
    "oversized stream": (_stream_without_length, "too_large"),
    "bad json": (lambda i: i.serve_body(b'{"keys": [}'), "bad_json"),
    "json array": (lambda i: i.serve_body(b"[]"), "bad_json"),
    "nan": (lambda i: i.serve_body(b'{"keys": NaN}'), "bad_json"),
    "not a jwks": (lambda i: i.serve_body(b'{"issuer": "x"}'), "not_jwks"),
    "empty key set": (lambda i: i.serve_body(b'{"keys": []}'), "no_usable_keys"),
    "only unusable keys": (
        lambda i: i.serve_body(b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'),
        "no_usable_keys",
    ),
    "too many keys": (_many_keys, "too_many_keys"),
    "html": (
        lambda i: i.serve_body(json.dumps(i.jwks()).encode(), content_type="text/html"),
        "wrong_content_type",
    ),
    "cross-host redirect": (
        lambda i: i.redirect_to(i.jwks_uri.replace("127.0.0.1", "localhost")),
        "cross_host_redirect",
    ),
    "redirect loop": (lambda i: i.redirect_to(i.jwks_uri), "too_many_redirects"),
}


def _refresh_error(events: Events) -> str:
    failed = events.of("refresh_failed")
    assert failed, events.kinds()
    return str(failed[-1].detail["error"])


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_on_a_cold_cache_is_503_and_reported(
    name: str, local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    fault, kind = FAULTS[name]
    fault(local_issuer)
    events = Events()
    with (
        remote_validator(local_issuer, clock, events, timeout=0.3) as validator,
        pytest.raises(KeysUnavailable) as caught,
    ):
        validator.validate(token(local_issuer, clock))
    assert caught.value.status_code == 503
    assert _refresh_error(events) == kind


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(FAULTS))
async def test_fault_on_a_cold_cache_is_503_and_reported_async(
    name: str, local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    fault, kind = FAULTS[name]
    fault(local_issuer)
    events = Events()
    async with remote_validator(local_issuer, clock, events, timeout=0.3) as validator:
        with pytest.raises(KeysUnavailable):
            await validator.avalidate(token(local_issuer, clock))
    assert _refresh_error(events) == kind


@pytest.mark.parametrize("name", ["503", "hang", "bad json", "empty key set", "oversized"])
def test_fault_after_a_good_fetch_keeps_the_last_good_keys(
    name: str, local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    events = Events()
    with remote_validator(local_issuer, clock, events, timeout=0.3) as validator:
        good = token(local_issuer, clock)
        validator.validate(good)
        FAULTS[name][0](local_issuer)
        clock.advance(301)  # expired: the refresh fails, the keys stay
        assert validator.validate(good).subject == "user-123"
    assert _refresh_error(events) == FAULTS[name][1]
    assert events.kinds()[-1] == "serving_stale"


def test_redirect_to_the_same_host_is_followed(local_issuer: LocalIssuer, clock: FakeClock) -> None:
    local_issuer.jwks_paths.add("/moved/jwks.json")
    local_issuer.redirect_to(f"{local_issuer.base_url}/moved/jwks.json", paths={JWKS})
    with remote_validator(local_issuer, clock) as validator:
        assert validator.validate(token(local_issuer, clock)).subject == "user-123"
    assert (local_issuer.requests[JWKS], local_issuer.requests["/moved/jwks.json"]) == (1, 1)


def test_requests_ask_for_json_without_compression(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    with remote_validator(local_issuer, clock) as validator:
        validator.validate(token(local_issuer, clock))
    headers = {k.lower(): v for k, v in local_issuer.last_headers[JWKS].items()}
    assert "application/jwk-set+json" in headers["accept"]
    assert headers["accept-encoding"] == "identity"
    assert headers["user-agent"].startswith("jwkguard")


def test_fetch_error_message_names_the_url_not_any_token(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    local_issuer.fail_with(500)
    events = Events()
    good = token(local_issuer, clock)
    with (
        remote_validator(local_issuer, clock, events) as validator,
        pytest.raises(KeysUnavailable) as caught,
    ):
        validator.validate(good)
    message = str(events.of("refresh_failed")[0].detail["message"])
    assert local_issuer.jwks_uri in message
    assert "500" in message
    assert good not in message
    assert good.split(".")[1] not in caught.value.description
