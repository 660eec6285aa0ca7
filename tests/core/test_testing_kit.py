"""The public test kit: keys, tokens (good and broken) and a real local issuer over HTTP."""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Iterator

import httpx
import pytest

from jwkguard import Issuer, TokenError, Validator
from jwkguard._parse import b64url_decode
from jwkguard.keys import KeySet
from jwkguard.keys._jwk import jwk_thumbprint
from jwkguard.testing import LocalIssuer, b64url, generate_key, mint_token, sign_compact

from ..conftest import AUDIENCE, ISSUER, FakeClock

ALGORITHMS = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
]


def _segments(token: str) -> tuple[dict[str, object], dict[str, object], bytes]:
    header, payload, signature = token.split(".")
    return (
        json.loads(b64url_decode(header.encode())),
        json.loads(b64url_decode(payload.encode())),
        b64url_decode(signature.encode()),
    )


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_generated_keys_sign_what_the_core_verifies(alg: str) -> None:
    key = generate_key(alg, kid=f"{alg}-kid")
    assert (key.alg, key.kid) == (alg, f"{alg}-kid")
    assert key.public_jwk["alg"] == alg
    assert key.public_jwk["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key.public_jwk)
    assert key.thumbprint == jwk_thumbprint(key.public_jwk)
    found = KeySet.from_jwks({"keys": [dict(key.public_jwk)]}, [alg]).select(key.kid, alg)
    assert found is not None
    _, verifier = found
    assert verifier(b"signed bytes", key.sign(b"signed bytes"))
    assert not verifier(b"other bytes", key.sign(b"signed bytes"))


def test_generated_key_ids_are_unique_by_default() -> None:
    assert generate_key("ES256").kid != generate_key("ES256").kid


def test_rsa_size_is_configurable_for_negative_tests() -> None:
    assert generate_key("RS256", rsa_bits=1024).private_key.key_size == 1024


@pytest.mark.parametrize("alg", ["HS256", "none", "RSA-OAEP"])
def test_keys_for_other_algorithms_cannot_be_generated(alg: str) -> None:
    with pytest.raises(ValueError, match="cannot generate"):
        generate_key(alg)


def test_mint_token_fills_in_sensible_claims(clock: FakeClock) -> None:
    key = generate_key("ES256", kid="k")
    header, payload, _ = _segments(
        mint_token(key, issuer=ISSUER, audience=AUDIENCE, now=clock.now, scopes=["a", "b"])
    )
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": "k"}
    now = int(clock.now)
    assert {name: payload[name] for name in ("iss", "sub", "aud", "iat", "nbf", "exp")} == {
        "iss": ISSUER,
        "sub": "user-123",
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    assert payload["scope"] == "a b"
    assert isinstance(payload["jti"], str)


def test_mint_token_overrides_and_omits_claims_and_header_members(clock: FakeClock) -> None:
    key = generate_key("ES256", kid="k")
    token = mint_token(
        key,
        issuer=ISSUER,
        audience=None,
        now=clock.now,
        lifetime=10,
        header={"typ": "JWT", "x": 1},
        omit=("nbf", "jti"),
        sub="other",
        tenant="acme",
    )
    header, payload, _ = _segments(token)
    assert header == {"alg": "ES256", "typ": "JWT", "kid": "k", "x": 1}
    assert "aud" not in payload
    assert "nbf" not in payload
    assert "jti" not in payload
    assert (payload["sub"], payload["tenant"], payload["exp"]) == (
        "other",
        "acme",
        int(clock.now) + 10,
    )


def test_minted_tokens_validate(clock: FakeClock) -> None:
    key = generate_key("EdDSA")
    validator = Validator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [key.public_jwk]})],
        algorithms=["EdDSA"],
        clock=clock,
    )
    claims = validator.validate(mint_token(key, issuer=ISSUER, audience=AUDIENCE, now=clock.now))
    assert claims.key_id == key.kid


def test_sign_compact_builds_broken_tokens_from_raw_bytes() -> None:
    token = sign_compact(b'{"alg":"none"}', b"not json")
    header, payload, signature = token.split(".")
    assert b64url_decode(header.encode()) == b'{"alg":"none"}'
    assert b64url_decode(payload.encode()) == b"not json"
    assert signature == ""


def test_sign_compact_signs_with_a_secret() -> None:
    import hashlib
    import hmac

    token = sign_compact({"alg": "HS384"}, {"a": 1}, secret=b"k" * 48, alg="HS384")
    signing_input, signature = token.rsplit(".", 1)
    expected = hmac.new(b"k" * 48, signing_input.encode(), hashlib.sha384).digest()
    assert b64url_decode(signature.encode()) == expected


def test_b64url_is_unpadded_base64url() -> None:
    assert b64url(b"\xfb\xff") == "-_8"


# -- the local issuer ------------------------------------------------------------------------


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer(alg="ES256") as running:
        yield running


def _get(url: str, **kwargs: object) -> httpx.Response:
    return httpx.get(url, timeout=5, **kwargs)  # type: ignore[arg-type]


def test_local_issuer_listens_on_loopback_with_a_random_port(issuer: LocalIssuer) -> None:
    assert issuer.url.startswith("http://127.0.0.1:")
    assert issuer.jwks_uri == f"{issuer.url}/jwks.json"


def test_local_issuer_serves_discovery_at_both_well_known_paths(issuer: LocalIssuer) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        document = _get(issuer.url + path).json()
        assert document["issuer"] == issuer.url
        assert document["jwks_uri"] == issuer.jwks_uri


def test_local_issuer_serves_its_jwks_with_cache_headers(issuer: LocalIssuer) -> None:
    response = _get(issuer.jwks_uri)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "max-age=300"
    assert response.json() == issuer.jwks()
    assert [jwk["kid"] for jwk in response.json()["keys"]] == [issuer.active_key.kid]
    again = _get(issuer.jwks_uri, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


def test_each_kind_of_answer_carries_its_headers(issuer: LocalIssuer) -> None:
    """304 keeps the ETag and Cache-Control; errors carry no Cache-Control; faults their own."""
    fresh = _get(issuer.jwks_uri)
    etag = fresh.headers["etag"]
    again = _get(issuer.jwks_uri, headers={"If-None-Match": etag})
    assert (again.status_code, again.headers["etag"]) == (304, etag)
    assert again.headers["cache-control"] == "max-age=300"
    missing = _get(issuer.url + "/nowhere")
    assert (missing.status_code, missing.headers["content-type"]) == (404, "application/json")
    assert "cache-control" not in missing.headers
    issuer.fail_with(503, retry_after=7)
    down = _get(issuer.jwks_uri)
    assert (down.status_code, down.headers["retry-after"]) == (503, "7")
    assert down.json() == {"error": "unavailable"}
    assert "cache-control" not in down.headers
    issuer.fail_with(500)
    assert "retry-after" not in _get(issuer.jwks_uri).headers


def test_local_issuer_counts_requests_and_keeps_their_headers(issuer: LocalIssuer) -> None:
    _get(issuer.jwks_uri, headers={"User-Agent": "kit-test"})
    _get(issuer.jwks_uri)
    _get(issuer.url + "/nowhere")
    assert issuer.requests["/jwks.json"] == 2
    assert issuer.requests["/nowhere"] == 1
    assert issuer.last_headers["/jwks.json"]["User-Agent"] == "python-httpx/" + httpx.__version__


def test_tokens_minted_by_the_local_issuer_validate_against_its_served_keys(
    issuer: LocalIssuer,
) -> None:
    jwks = _get(issuer.jwks_uri).json()
    validator = Validator(issuers=[issuer.issuer_config(jwks=jwks)], algorithms=["ES256"])
    claims = validator.validate(issuer.mint(scopes=["orders:read"]))
    assert (claims.issuer, claims.audiences, claims.scopes) == (
        issuer.url,
        (issuer.audience,),
        frozenset({"orders:read"}),
    )


def test_rotation_publishes_a_new_key_and_signs_with_it(issuer: LocalIssuer) -> None:
    old = issuer.active_key
    new = issuer.rotate()
    assert issuer.active_key is new
    kids = [jwk["kid"] for jwk in _get(issuer.jwks_uri).json()["keys"]]
    assert kids == [old.kid, new.kid]
    header, _, _ = _segments(issuer.mint())
    assert header["kid"] == new.kid
    issuer.retire(old.kid)
    assert [jwk["kid"] for jwk in _get(issuer.jwks_uri).json()["keys"]] == [new.kid]
    newest = issuer.rotate("ES384", retire_old=True)
    assert [jwk["kid"] for jwk in _get(issuer.jwks_uri).json()["keys"]] == [newest.kid]


def test_extra_jwks_entries_are_published_as_given(issuer: LocalIssuer) -> None:
    issuer.extra_jwks.append({"kty": "oct", "kid": "planted", "k": "AAAA"})
    assert _get(issuer.jwks_uri).json()["keys"][-1]["kid"] == "planted"


def test_fail_with_and_heal(issuer: LocalIssuer) -> None:
    issuer.fail_with(503)
    assert _get(issuer.jwks_uri).status_code == 503
    issuer.heal()
    assert _get(issuer.jwks_uri).status_code == 200
    with issuer.outage(500):
        assert _get(issuer.jwks_uri).status_code == 500
    assert _get(issuer.jwks_uri).status_code == 200


def test_faults_can_target_some_paths(issuer: LocalIssuer) -> None:
    issuer.fail_with(503, paths={"/jwks.json"})
    assert _get(issuer.jwks_uri).status_code == 503
    assert _get(issuer.url + "/.well-known/openid-configuration").status_code == 200


def test_hang_holds_requests_until_the_client_gives_up(issuer: LocalIssuer) -> None:
    issuer.hang(5)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(issuer.jwks_uri, timeout=0.3)
    assert time.monotonic() - started < 3
    issuer.heal()  # releases the held request at once
    assert _get(issuer.jwks_uri).status_code == 200


def test_slow_body_trickles_the_answer(issuer: LocalIssuer) -> None:
    issuer.slow_body(0.4)
    started = time.monotonic()
    response = _get(issuer.jwks_uri)
    assert response.json() == issuer.jwks()
    assert time.monotonic() - started >= 0.3


def test_serve_body_and_redirect(issuer: LocalIssuer) -> None:
    issuer.serve_body(b"{not json", content_type="text/plain")
    response = _get(issuer.jwks_uri)
    assert (response.status_code, response.content, response.headers["content-type"]) == (
        200,
        b"{not json",
        "text/plain",
    )
    issuer.redirect_to("http://127.0.0.1:9/elsewhere")
    response = _get(issuer.jwks_uri)
    assert (response.status_code, response.headers["location"]) == (
        302,
        "http://127.0.0.1:9/elsewhere",
    )


def test_an_issuer_with_a_path_serves_under_it() -> None:
    with LocalIssuer(alg="ES256", path="/realms/acme") as issuer:
        assert issuer.url.endswith("/realms/acme")
        assert _get(issuer.jwks_uri).status_code == 200
        rfc8414 = f"{issuer.base_url}/.well-known/oauth-authorization-server/realms/acme"
        assert _get(rfc8414).json()["issuer"] == issuer.url


def test_issuer_config_is_a_jwkguard_issuer_for_this_issuer(issuer: LocalIssuer) -> None:
    config = issuer.issuer_config(jwks_uri=issuer.jwks_uri)
    assert isinstance(config, Issuer)
    assert (config.issuer, config.audiences, config.jwks_uri) == (
        issuer.url,
        (issuer.audience,),
        issuer.jwks_uri,
    )


def test_a_token_from_a_retired_key_is_refused_by_a_validator_of_the_new_keys(
    issuer: LocalIssuer,
) -> None:
    old_token = issuer.mint()
    issuer.rotate(retire_old=True)
    validator = Validator(
        issuers=[issuer.issuer_config(jwks=_get(issuer.jwks_uri).json())], algorithms=["ES256"]
    )
    with pytest.raises(TokenError) as caught:
        validator.validate(old_token)
    assert caught.value.reason == "unknown_key"
    assert validator.validate(issuer.mint())


def test_a_client_resetting_its_connection_leaves_no_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A reset (a key source's pool closed at shutdown) is the client's business; a handler
    that fails for another reason still reports it."""
    with LocalIssuer() as issuer:
        host, port = issuer.base_url.removeprefix("http://").split(":")
        for _ in range(5):
            client = socket.create_connection((host, int(port)), timeout=5)
            client.sendall(b"GET /jwks.json HTTP/1.1\r\nHost: x\r\n")  # unfinished request
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # SO_LINGER 0: the close sends a reset
        assert httpx.get(issuer.jwks_uri, timeout=5).status_code == 200
        issuer.routes["/boom"] = _boom
        with pytest.raises(httpx.HTTPError):
            httpx.get(issuer.base_url + "/boom", timeout=5)
        err = ""
        deadline = time.monotonic() + 5
        while "RuntimeError: boom" not in err and time.monotonic() < deadline:
            time.sleep(0.02)  # the failing handler's report reaches stderr from its thread
            err += capsys.readouterr().err
    assert "RuntimeError: boom" in err
    assert "ConnectionResetError" not in err
    assert "Connection reset" not in err


def _boom(handler: object, body: bytes) -> None:
    raise RuntimeError("boom")
