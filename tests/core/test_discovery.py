"""Discovery: OpenID Connect then RFC 8414 metadata, the exact issuer check, the jwks_uri."""

from __future__ import annotations

import pytest

from jwkguard import KeysUnavailable
from jwkguard.keys._discovery import discovery_urls
from jwkguard.keys._remote import RemoteKeySource
from jwkguard.testing import LocalIssuer

from ..conftest import FakeClock
from ._remote_support import JWKS, Events, remote_validator, token, wait_until

OIDC = "/.well-known/openid-configuration"
OAUTH = "/.well-known/oauth-authorization-server"


def discovery_error(issuer: LocalIssuer, clock: FakeClock) -> str:
    """Validate through discovery, expect 503, and return the reported error kind."""
    events = Events()
    with (
        remote_validator(issuer, clock, events, discovery=True) as validator,
        pytest.raises(KeysUnavailable),
    ):
        validator.validate(token(issuer, clock))
    return str(events.of("refresh_failed")[0].detail["error"])


@pytest.mark.parametrize(
    ("issuer", "expected"),
    [
        (
            "https://id.example.com",
            (
                "https://id.example.com/.well-known/openid-configuration",
                "https://id.example.com/.well-known/oauth-authorization-server",
            ),
        ),
        (
            "https://id.example.com/",
            (
                "https://id.example.com/.well-known/openid-configuration",
                "https://id.example.com/.well-known/oauth-authorization-server",
            ),
        ),
        (
            "https://id.example.com/realms/demo",
            (
                "https://id.example.com/realms/demo/.well-known/openid-configuration",
                "https://id.example.com/.well-known/oauth-authorization-server/realms/demo",
                "https://id.example.com/realms/demo/.well-known/oauth-authorization-server",
            ),
        ),
    ],
)
def test_discovery_urls_follow_oidc_then_rfc8414(issuer: str, expected: tuple[str, ...]) -> None:
    assert discovery_urls(issuer) == expected


def test_discovery_finds_the_jwks_uri(local_issuer: LocalIssuer, clock: FakeClock) -> None:
    with remote_validator(local_issuer, clock, discovery=True) as validator:
        assert validator.validate(token(local_issuer, clock)).subject == "user-123"
        validator.validate(token(local_issuer, clock))
        source = validator.key_source(local_issuer.url)
        assert isinstance(source, RemoteKeySource)
        assert source.status().jwks_uri == local_issuer.jwks_uri
    assert (local_issuer.requests[OIDC], local_issuer.requests[JWKS]) == (1, 1)


def test_metadata_naming_another_issuer_is_refused(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    local_issuer.discovery_overrides["issuer"] = "https://impostor.example.com"
    events = Events()
    with remote_validator(local_issuer, clock, events, discovery=True) as validator:
        with pytest.raises(KeysUnavailable) as caught:
            validator.validate(token(local_issuer, clock))
        assert caught.value.status_code == 503
        failure = events.of("refresh_failed")[0]
        assert failure.detail["error"] == "issuer_mismatch"
        assert "https://impostor.example.com" in str(failure.detail["message"])
        clock.advance(120)
        with pytest.raises(KeysUnavailable) as warm:
            validator.warm_up()
    assert "names issuer 'https://impostor.example.com'" in str(warm.value.__cause__)
    assert local_issuer.requests[JWKS] == 0


def test_issuer_is_compared_exactly_without_normalising(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    local_issuer.discovery_overrides["issuer"] = local_issuer.url + "/"
    assert discovery_error(local_issuer, clock) == "issuer_mismatch"


def test_rfc8414_metadata_is_used_when_openid_configuration_is_missing(
    clock: FakeClock,
) -> None:
    with LocalIssuer(path="/realms/demo") as issuer:
        issuer.serve_openid_configuration = False
        with remote_validator(issuer, clock, discovery=True) as validator:
            assert validator.validate(token(issuer, clock)).subject == "user-123"
        assert issuer.requests[f"/realms/demo{OIDC}"] == 1
        assert issuer.requests[f"{OAUTH}/realms/demo"] == 1
        assert issuer.requests["/realms/demo/jwks.json"] == 1


def test_no_metadata_at_all_is_reported(local_issuer: LocalIssuer, clock: FakeClock) -> None:
    local_issuer.serve_openid_configuration = False
    local_issuer.serve_oauth_metadata = False
    assert discovery_error(local_issuer, clock) == "no_metadata"


def test_server_error_on_metadata_does_not_fall_through(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    local_issuer.fail_with(503, paths={OIDC})
    assert discovery_error(local_issuer, clock) == "http_status"
    assert local_issuer.requests[OAUTH] == 0


@pytest.mark.parametrize(
    ("jwks_uri", "kind"),
    [
        ("http://keys.example.com/jwks.json", "insecure_url"),
        ("", "no_jwks_uri"),
        (7, "no_jwks_uri"),
    ],
)
def test_bad_jwks_uri_in_metadata_is_refused(
    jwks_uri: object, kind: str, local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    local_issuer.discovery_overrides["jwks_uri"] = jwks_uri
    assert discovery_error(local_issuer, clock) == kind


def test_metadata_that_is_not_json_is_refused(local_issuer: LocalIssuer, clock: FakeClock) -> None:
    local_issuer.serve_body(b"<html>login</html>", content_type="text/html", paths={OIDC})
    assert discovery_error(local_issuer, clock) == "wrong_content_type"


def test_jwks_uri_on_another_host_is_allowed(local_issuer: LocalIssuer, clock: FakeClock) -> None:
    local_issuer.discovery_overrides["jwks_uri"] = local_issuer.jwks_uri.replace(
        "127.0.0.1", "localhost"
    )
    with remote_validator(local_issuer, clock, discovery=True) as validator:
        assert validator.validate(token(local_issuer, clock)).subject == "user-123"


def test_jwks_gone_runs_discovery_again(local_issuer: LocalIssuer, clock: FakeClock) -> None:
    with remote_validator(local_issuer, clock, discovery=True, max_stale=10_000) as validator:
        good = token(local_issuer, clock)
        validator.validate(good)
        # The issuer moves its keys: the old location answers 404, the metadata points anew.
        local_issuer.fail_with(404, paths={JWKS})
        local_issuer.jwks_paths.add("/keys/v2")
        local_issuer.discovery_overrides["jwks_uri"] = f"{local_issuer.url}/keys/v2"
        clock.advance(301)
        validator.validate(good)  # fails over to stale keys, forgets the jwks_uri
        clock.advance(2)  # past the first backoff
        validator.validate(good)  # stale keys serve; discovery runs again in the background
        source = validator.key_source(local_issuer.url)
        assert isinstance(source, RemoteKeySource)
        wait_until(lambda: not source.status().serving_stale)
        assert local_issuer.requests[OIDC] == 2
        assert local_issuer.requests["/keys/v2"] == 1
        assert source.status().jwks_uri == f"{local_issuer.url}/keys/v2"
