"""`jwkguard serve` configuration: TOML, environment overrides, refusals, `--check`, health."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from jwkguard import ConfigurationError
from jwkguard._cli import cli
from jwkguard._forward_auth import ForwardAuthApp, RouteRule, load_config, parse_config
from jwkguard._forward_auth._routes import AmbiguousPath, normalise_host, normalise_path
from jwkguard.testing import LocalIssuer

from .conftest import forward_auth_toml


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwkguard.toml"
    path.write_text(
        forward_auth_toml(issuer="https://id.example.com/", audience="https://api", port=9180)
    )
    return path


def test_toml_file_is_read_into_a_validated_config(config_file: Path) -> None:
    config = load_config(config_file, {})
    assert (config.host, config.port, config.realm) == ("127.0.0.1", 9180, "orders")
    assert config.claim_headers == {"X-Auth-Client": "client_id", "X-Auth-Tenant": "org.tenant"}
    assert config.validator["issuers"][0]["audiences"] == ["https://api"]
    # Most specific first: longer prefixes, then rules with methods.
    assert [(route.path, route.methods) for route in config.routes.routes] == [
        ("/orders", ("GET",)),
        ("/orders", ("POST", "PUT", "DELETE")),
        ("/public", None),
        ("/admin", None),
    ]


def test_environment_overrides_any_value(config_file: Path) -> None:
    environ = {
        "JWKGUARD__SERVER__PORT": "9999",
        "JWKGUARD__SERVER__HOST": "0.0.0.0",
        "JWKGUARD__SERVER__UNMATCHED": "deny",
        "JWKGUARD__VALIDATOR__LEEWAY": "30",
        "JWKGUARD__VALIDATOR__ISSUERS__0__AUDIENCES": '["a", "b"]',
        "JWKGUARD__ROUTES__1__SCOPES": '["orders:list"]',
        "OTHER": "ignored",
    }
    config = load_config(config_file, environ)
    assert (config.port, config.host, config.unmatched) == (9999, "0.0.0.0", "deny")
    assert config.validator["leeway"] == 30
    assert config.validator["issuers"][0]["audiences"] == ["a", "b"]
    (reading,) = [route for route in config.routes.routes if route.methods == ("GET",)]
    assert reading.scopes == frozenset({"orders:list"})


def test_config_path_can_come_from_the_environment(config_file: Path) -> None:
    assert load_config(None, {"JWKGUARD_CONFIG": str(config_file)}).port == 9180


def test_environment_alone_can_configure_everything() -> None:
    config = load_config(
        None,
        {
            "JWKGUARD__SERVER__GATEWAY": "traefik",
            "JWKGUARD__VALIDATOR__ALGORITHMS": '["ES256"]',
            "JWKGUARD__VALIDATOR__ISSUERS": '[{issuer = "https://id/", audiences = ["x"]}]',
        },
    )
    assert config.validator["algorithms"] == ["ES256"]
    assert config.gateway == "traefik"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"validator": {"algorithms": ["RS256"]}, "servr": {}}, "unknown sections: servr"),
        ({"validator": {"x": 1}, "server": {"prot": 1}}, "[server]: unknown keys: prot"),
        ({"server": {}}, "a [validator] table is required"),
        ({"validator": {"x": 1}, "server": {"port": 70000}}, "server.port"),
        ({"validator": {"x": 1}, "server": {"unmatched": "allow"}}, "server.unmatched"),
        ({"validator": {"x": 1}, "routes": [{"path": "orders"}]}, "must start with '/'"),
        ({"validator": {"x": 1}, "routes": [{"path": "/", "scope": ["a"]}]}, "unknown keys"),
        (
            {"validator": {"x": 1}, "routes": [{"anonymous": True, "scopes": ["a"]}]},
            "cannot require scopes",
        ),
        (
            {"validator": {"x": 1}, "server": {"claim_headers": {"X-Auth-Subject": "sub"}}},
            "reserved",
        ),
        (
            {"validator": {"x": 1}, "server": {"claim_headers": {"Bad Header": "sub"}}},
            "not a name",
        ),
        (
            {"validator": {"x": 1}, "lifecycle": {"prefix": "x"}},
            "[lifecycle].REDIS_URL must be a Redis URL",
        ),
        ({"validator": {"x": 1}}, "server.gateway is required"),
        ({"validator": {"x": 1}, "server": {"gateway": "haproxy"}}, "server.gateway"),
        (
            {"validator": {"x": 1}, "server": {"gateway": "nginx", "trusted_proxies": "10/8"}},
            "server.trusted_proxies must be a list",
        ),
        (
            {"validator": {"x": 1}, "server": {"gateway": "nginx", "trusted_proxies": ["gw"]}},
            "'gw' is not an address",
        ),
        ({"validator": {"x": 1}, "routes": [{"methods": ["HEAD"]}]}, "HEAD follows GET"),
        ({"validator": {"x": 1}, "routes": [{"path": "/a;b"}]}, "routes[0].path"),
        ({"validator": {"x": 1}, "routes": [{"path": "/%61"}]}, "written decoded"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(
    document: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        parse_config(document)


def test_bad_environment_path_is_refused(config_file: Path) -> None:
    with pytest.raises(ConfigurationError, match="no list item"):
        load_config(config_file, {"JWKGUARD__VALIDATOR__ISSUERS__5__AUDIENCES": "[]"})


def test_serve_check_validates_and_prints_the_routes(config_file: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "--config", str(config_file), "--check", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["issuers"] == ["https://id.example.com/"]
    assert "methods=GET host=* path=/orders scopes=orders:read" in summary["routes"]


def test_serve_check_exits_2_on_a_bad_validator_setting(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[validator]\nalgorithms = ["none"]\n[[validator.issuers]]\nissuer = "x"\n')
    result = CliRunner().invoke(cli, ["serve", "--config", str(path), "--check"])
    assert result.exit_code == 2
    assert "configuration:" in result.output


def test_serve_refuses_unreadable_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[server\n")
    result = CliRunner().invoke(cli, ["serve", "--config", str(path)])
    assert result.exit_code == 2
    assert "not valid TOML" in result.output


def test_healthz_turns_ready_once_the_issuer_answers(local_issuer: LocalIssuer) -> None:
    document = {
        "server": {"metrics": False, "audit": False, "gateway": "nginx"},
        "validator": {
            "algorithms": ["RS256"],
            "issuers": [{"issuer": local_issuer.url, "audiences": [local_issuer.audience]}],
        },
    }
    local_issuer.fail_with(503)
    app = ForwardAuthApp(parse_config(document))
    with TestClient(app) as client:
        down = client.get("/healthz")
        assert down.status_code == 503
        assert down.json()["issuers"][0]["last_error"] is not None
        local_issuer.heal()
        app._last_health_retry = 0.0  # the retry interval has passed
        up = client.get("/healthz")
    assert up.status_code == 200
    assert up.json()["issuers"][0]["kids"] == [local_issuer.active_key.kid]


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("/a//b///c?x=1", "/a/b/c"),
        ("/caf%C3%A9", "/café"),
        ("/%7Euser", "/~user"),
        ("/%41dmin", "/Admin"),
    ],
)
def test_paths_are_normalised_before_matching(uri: str, path: str) -> None:
    assert normalise_path(uri)[0] == path


def test_invalid_utf8_in_a_path_is_ambiguous() -> None:
    with pytest.raises(AmbiguousPath):
        normalise_path("/%ff")


def test_hosts_lose_port_case_and_trailing_dot() -> None:
    assert normalise_host("API.Example.com.:8443") == "api.example.com"
    assert normalise_host("[::1]:80") == "[::1]"


def test_wildcard_hosts_match_subdomains_only() -> None:
    route = RouteRule(host="*.example.com")
    assert route.matches("api.example.com", "/", "GET")
    assert not route.matches("example.com", "/", "GET")
    assert not route.matches("evilexample.com", "/", "GET")


GATEWAYS_DOC = Path(__file__).resolve().parents[2] / "docs" / "gateways.md"


def test_the_documented_configuration_is_valid_and_refuses_unnamed_methods(
    issuer: LocalIssuer,
) -> None:
    import tomllib

    (block,) = re.findall(r"```toml\n(.*?)```", GATEWAYS_DOC.read_text(encoding="utf-8"), re.S)
    document = tomllib.loads(block)
    assert document["server"]["gateway"] == "nginx"
    document["validator"]["issuers"] = [
        {"issuer": issuer.url, "audiences": [issuer.audience], "jwks": issuer.jwks()}
    ]
    del document["lifecycle"]
    config = parse_config(document)
    assert config.trusted_proxies == ("127.0.0.1",)
    writer = issuer.mint(scopes=["orders:write"])
    with TestClient(ForwardAuthApp(config), client=("127.0.0.1", 1)) as client:
        for method, status in (("PATCH", 200), ("HEAD", 403), ("OPTIONS", 403)):
            response = client.get(
                "/auth",
                headers={
                    "X-Original-URI": "/orders/7",
                    "X-Original-Method": method,
                    "X-Forwarded-Host": "api.example.com",
                    "Authorization": f"Bearer {writer}",
                },
            )
            assert response.status_code == status, method


def test_check_reports_the_gateway_and_its_trusted_peers(config_file: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "--config", str(config_file), "--check", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["gateway"], summary["trusted_proxies"]) == ("nginx", ["127.0.0.1", "::1"])


@pytest.mark.parametrize(
    "name",
    [
        "Content-Length",  # a claim would set the answer's framing: a broken answer
        "transfer-encoding",
        "Connection",
        "Cache-Control",  # a claim would lift the answer's no-store
        "X-Auth-Error-Body",
        "x-envoy-auth-headers-to-remove",  # a claim would strip headers behind Envoy
        "X-Envoy-Original-Path",
        "Retry-After",
        "DPoP-Nonce",
        "Set-Cookie",
        "Content-Type",
    ],
)
def test_a_claim_header_cannot_take_a_header_the_answer_depends_on(name: str) -> None:
    """Claim values are the issuer's (often the user's): they never set a header with meaning."""
    document = {"validator": {"x": 1}, "server": {"gateway": "envoy", "claim_headers": {name: "c"}}}
    with pytest.raises(ConfigurationError, match="reserved"):
        parse_config(document)


def test_two_claim_headers_differing_only_in_case_are_refused() -> None:
    """Header names are case-insensitive: both would be sent, and upstreams pick either."""
    headers = {"X-Auth-Email": "email", "x-auth-email": "sub"}
    document = {"validator": {"x": 1}, "server": {"gateway": "nginx", "claim_headers": headers}}
    with pytest.raises(ConfigurationError, match="more than once"):
        parse_config(document)
