"""`jwkguard keys ISSUER`: discovery, the JWK Set's cache headers, every key with its thumbprint."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from jwkguard._cli import cli
from jwkguard.testing import LocalIssuer, generate_key

from ..servers import free_port


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["keys", *args], catch_exceptions=False)


def test_keys_lists_kids_types_algorithms_and_thumbprints(local_issuer: LocalIssuer) -> None:
    old = local_issuer.active_key
    new = local_issuer.rotate("ES256")
    result = run(local_issuer.url, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["discovery_url"] == f"{local_issuer.url}/.well-known/openid-configuration"
    assert document["jwks_uri"] == local_issuer.jwks_uri
    assert document["cache_headers"]["cache-control"] == "max-age=300"
    assert "etag" in document["cache_headers"]
    assert document["cache_ttl"] == 300
    listed = {key["kid"]: key for key in document["keys"]}
    assert listed[old.kid]["thumbprint"] == old.thumbprint
    assert (listed[old.kid]["kty"], listed[old.kid]["size"]) == ("RSA", "2048")
    assert listed[new.kid]["thumbprint"] == new.thumbprint
    assert (listed[new.kid]["kty"], listed[new.kid]["size"]) == ("EC", "P-256")
    assert listed[new.kid]["algorithms"] == ["ES256"]


def test_keys_marks_unusable_keys_with_the_reason(local_issuer: LocalIssuer) -> None:
    encryption = dict(generate_key("RS256", kid="enc-1").public_jwk)
    encryption["use"] = "enc"
    local_issuer.extra_jwks.append(encryption)
    result = run(local_issuer.url)
    assert result.exit_code == 0
    line = next(line for line in result.stdout.splitlines() if "enc-1" in line)
    assert line.lstrip().startswith("✗")
    assert "use is 'enc'" in line
    assert "Keys: 1 usable of 2" in result.output
    assert "cache-control  max-age=300" in result.output


def test_keys_with_an_explicit_jwks_uri_skips_discovery(local_issuer: LocalIssuer) -> None:
    local_issuer.serve_openid_configuration = False
    local_issuer.serve_oauth_metadata = False
    document = json.loads(
        run(local_issuer.url, "--jwks-uri", local_issuer.jwks_uri, "--json").stdout
    )
    assert document["discovery_url"] is None
    assert document["usable_keys"] == 1


def test_keys_falls_back_to_rfc8414_metadata(local_issuer: LocalIssuer) -> None:
    local_issuer.serve_openid_configuration = False
    document = json.loads(run(local_issuer.url, "--json").stdout)
    assert document["discovery_url"].endswith("/.well-known/oauth-authorization-server")


def test_keys_refuses_a_discovery_document_naming_another_issuer(
    local_issuer: LocalIssuer,
) -> None:
    local_issuer.discovery_overrides["issuer"] = "https://evil.example.com/"
    result = run(local_issuer.url, "--json")
    assert result.exit_code == 3
    assert "names issuer 'https://evil.example.com/'" in json.loads(result.stdout)["error"]


def test_keys_exits_3_when_the_issuer_is_down(local_issuer: LocalIssuer) -> None:
    with local_issuer.outage(503):
        assert run(local_issuer.url).exit_code == 3
    assert run(f"http://127.0.0.1:{free_port()}").exit_code == 3


def test_keys_exits_3_when_no_key_is_usable(local_issuer: LocalIssuer) -> None:
    local_issuer.serve_body(b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', paths={"/jwks.json"})
    result = run(local_issuer.url, "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["keys"][0]["thumbprint"] is None


def test_keys_does_not_follow_redirects(local_issuer: LocalIssuer) -> None:
    local_issuer.redirect_to("https://elsewhere.example.com/jwks.json", paths={"/jwks.json"})
    result = run(local_issuer.url, "--json")
    assert result.exit_code == 3
    assert "redirects are not followed" in json.loads(result.stdout)["error"]


def test_keys_refuses_plain_http_for_a_remote_host() -> None:
    result = run("http://id.example.com/", "--json")
    assert result.exit_code == 3
    assert "must use https" in json.loads(result.stdout)["error"]
