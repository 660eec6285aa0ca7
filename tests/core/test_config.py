"""Configuration is validated when it is built: a bad value fails at start-up, not per request."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from jwkguard import ConfigurationError, Issuer, JWKGuardError, TokenError, Validator
from jwkguard.testing import SigningKey

from ..conftest import AUDIENCE, ISSUER


@pytest.fixture(scope="module")
def jwks(rsa_key: SigningKey) -> dict[str, Any]:
    return {"keys": [dict(rsa_key.public_jwk)]}


def _validator(jwks: dict[str, Any], **options: Any) -> Validator:
    options.setdefault("issuers", [Issuer(ISSUER, audiences=[AUDIENCE], jwks=jwks)])
    options.setdefault("algorithms", ["RS256"])
    return Validator(**options)


def test_configuration_error_is_a_value_error_and_never_a_token_error() -> None:
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(ConfigurationError, JWKGuardError)
    assert not issubclass(ConfigurationError, TokenError)


def test_the_documented_minimal_configuration_builds(jwks: dict[str, Any]) -> None:
    validator = _validator(jwks)
    assert validator.algorithms == frozenset({"RS256"})
    assert validator.leeway == 0
    assert validator.max_token_size == 32768


def test_algorithms_have_no_default(jwks: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        Validator(issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks=jwks)])  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("algorithms", "message"),
    [
        ([], "must not be empty"),
        ("RS256", "must be a list"),
        (["none"], "'none' algorithm is never allowed"),
        (["NONE"], "'none' algorithm is never allowed"),
        (["RS256", "None"], "'none' algorithm is never allowed"),
        (["RS1"], "unknown algorithm 'RS1'"),
        (["rs256"], "unknown algorithm 'rs256'"),
        (["RSA-OAEP"], "unknown algorithm"),
        ([256], "must be strings"),
    ],
)
def test_bad_algorithms_are_refused(jwks: dict[str, Any], algorithms: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _validator(jwks, algorithms=algorithms)


@pytest.mark.parametrize("algorithms", [["HS256"], ["RS256", "HS384"]])
def test_hmac_algorithms_with_only_a_jwks_are_refused(
    jwks: dict[str, Any], algorithms: list[str]
) -> None:
    with pytest.raises(ConfigurationError, match="explicit secret"):
        _validator(jwks, algorithms=algorithms)


def test_a_secret_without_an_hmac_algorithm_is_refused() -> None:
    issuer = Issuer(ISSUER, audiences=[AUDIENCE], secret=b"s" * 32)
    with pytest.raises(ConfigurationError, match="no HS algorithm"):
        Validator(issuers=[issuer], algorithms=["RS256"])


@pytest.mark.parametrize(("alg", "length"), [("HS256", 31), ("HS384", 47), ("HS512", 63)])
def test_a_secret_shorter_than_the_hash_is_refused(alg: str, length: int) -> None:
    issuer = Issuer(ISSUER, audiences=[AUDIENCE], secret=b"s" * length)
    with pytest.raises(ConfigurationError, match=f"at least {length + 1} bytes for {alg}"):
        Validator(issuers=[issuer], algorithms=[alg])


def test_a_secret_cannot_be_combined_with_a_jwks_uri() -> None:
    issuer = Issuer(
        ISSUER, audiences=[AUDIENCE], secret=b"s" * 32, jwks_uri="https://id.example.com/jwks"
    )
    with pytest.raises(ConfigurationError, match="secret cannot be combined with jwks_uri"):
        Validator(issuers=[issuer], algorithms=["HS256"])


@pytest.mark.parametrize("leeway", [-1, float("nan"), float("inf"), True, "5", None])
def test_bad_leeway_is_refused(jwks: dict[str, Any], leeway: Any) -> None:
    with pytest.raises(ConfigurationError, match="leeway"):
        _validator(jwks, leeway=leeway)


@pytest.mark.parametrize("leeway", [0, 30, 1.5])
def test_good_leeway_is_kept(jwks: dict[str, Any], leeway: float) -> None:
    assert _validator(jwks, leeway=leeway).leeway == leeway


@pytest.mark.parametrize("size", [10, 63, True, 1.5e4, "8192"])
def test_bad_max_token_size_is_refused(jwks: dict[str, Any], size: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_token_size"):
        _validator(jwks, max_token_size=size)


@pytest.mark.parametrize("name", ["max_age", "max_lifetime"])
@pytest.mark.parametrize("value", [0, -5, float("nan"), float("inf"), "60", True])
def test_bad_age_limits_are_refused(jwks: dict[str, Any], name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=name):
        _validator(jwks, **{name: value})


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("required_claims", "exp", "required_claims must be a list"),
        ("required_claims", ["exp", ""], "required_claims must hold non-empty strings"),
        ("required_claims", [1], "required_claims must hold non-empty strings"),
        ("required_scopes", "read", "required_scopes must be a list"),
        ("claim_checks", [1], "claim_checks must be a list of callables"),
        ("clock", 1_800_000_000, "clock must be a callable"),
        ("token_type", "", "token_type must be a non-empty string"),
        ("token_type", 1, "token_type must be a non-empty string"),
    ],
)
def test_bad_validator_options_are_refused(
    jwks: dict[str, Any], option: str, value: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _validator(jwks, **{option: value})


def test_issuers_must_be_a_non_empty_list_of_issuers(jwks: dict[str, Any]) -> None:
    issuer = Issuer(ISSUER, audiences=[AUDIENCE], jwks=jwks)
    with pytest.raises(ConfigurationError, match="at least one issuer"):
        _validator(jwks, issuers=[])
    with pytest.raises(ConfigurationError, match="list of Issuer"):
        _validator(jwks, issuers=issuer)
    with pytest.raises(ConfigurationError, match="Issuer instances"):
        _validator(jwks, issuers=[ISSUER])
    with pytest.raises(ConfigurationError, match="configured twice"):
        _validator(jwks, issuers=[issuer, issuer])


def test_a_static_jwks_without_a_usable_key_is_refused_with_the_reasons(
    rsa_key: SigningKey,
) -> None:
    document = {"keys": [{**rsa_key.public_jwk, "use": "enc"}]}
    issuer = Issuer(ISSUER, audiences=[AUDIENCE], jwks=document)
    with pytest.raises(ConfigurationError, match=r"no usable key .*use is 'enc'"):
        Validator(issuers=[issuer], algorithms=["RS256"])
    with pytest.raises(ConfigurationError, match=r"no usable key \(empty\)"):
        Validator(
            issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": []})], algorithms=["RS256"]
        )


def test_a_static_jwks_whose_keys_fit_no_allowed_algorithm_is_refused(
    jwks: dict[str, Any],
) -> None:
    with pytest.raises(ConfigurationError, match="fits none of the allowed algorithms"):
        _validator(jwks, algorithms=["ES256"])


@pytest.mark.parametrize(
    ("document", "message"),
    [({"keys": {}}, "'keys' array"), ({"nokeys": []}, "'keys' array")],
)
def test_a_malformed_static_jwks_is_refused(document: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Validator(
            issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks=document)], algorithms=["RS256"]
        )


def test_a_static_jwks_file_is_read_once_at_start_up(tmp_path: Path, jwks: dict[str, Any]) -> None:
    import json

    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks), encoding="utf-8")
    validator = Validator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks=path)], algorithms=["RS256"]
    )
    path.unlink()  # validation never touches the file system again
    assert len(validator.key_source(ISSUER).current_keys() or ()) == 1


def test_a_missing_jwks_file_is_refused(tmp_path: Path) -> None:
    issuer = Issuer(ISSUER, audiences=[AUDIENCE], jwks=tmp_path / "missing.json")
    with pytest.raises(ConfigurationError, match="cannot read JWK Set"):
        Validator(issuers=[issuer], algorithms=["RS256"])


def test_jwks_of_another_type_is_refused() -> None:
    issuer = Issuer(ISSUER, audiences=[AUDIENCE], jwks=[{"kty": "RSA"}])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="JWK Set dict or a path"):
        Validator(issuers=[issuer], algorithms=["RS256"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"issuer": ""}, "issuer must be a non-empty string"),
        ({"issuer": None}, "issuer must be a non-empty string"),
        ({"audiences": AUDIENCE}, "not one string"),
        ({"audiences": []}, "non-empty list of strings"),
        ({"audiences": [""]}, "non-empty list of strings"),
        ({"audiences": [1]}, "non-empty list of strings"),
        ({"audiences": None}, "audiences are required"),
        ({"jwks_uri": "https://id.example.com/jwks"}, "jwks or jwks_uri, not both"),
        ({"secret": "text"}, "secret must be non-empty bytes"),
        ({"secret": b""}, "secret must be non-empty bytes"),
        ({"secret_kid": "k"}, "secret_kid needs a secret"),
        ({"secret": b"s" * 32, "secret_kid": ""}, "secret_kid must be a non-empty string"),
        ({"scope_claim": ""}, "scope_claim"),
        ({"claim_checks": [1]}, "claim_checks must be a list of callables"),
        ({"allowed_client_ids": "web"}, "allowed_client_ids must be a list"),
        ({"allowed_client_ids": []}, "allowed_client_ids must be a non-empty list"),
        ({"default_ttl": -1}, "default_ttl must be positive"),
        ({"timeout": float("nan")}, "timeout must be a number"),
        ({"min_ttl": 600, "max_ttl": 60}, "min_ttl must not exceed max_ttl"),
        ({"max_keys": 0}, "max_keys must be positive"),
        ({"max_response_bytes": 1.5}, "max_keys must be positive"),
    ],
)
def test_bad_issuer_options_are_refused(
    jwks: dict[str, Any], options: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks}
    arguments.update(options)
    issuer = arguments.pop("issuer")
    with pytest.raises(ConfigurationError, match=message):
        Issuer(issuer, **arguments)


@pytest.mark.parametrize(
    "url", ["http://id.example.com/jwks", "ftp://id.example.com/jwks", "id.example.com/jwks"]
)
def test_a_jwks_uri_must_be_https_unless_loopback(url: str) -> None:
    with pytest.raises(ConfigurationError, match="must use https"):
        Issuer(ISSUER, audiences=[AUDIENCE], jwks_uri=url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]/jwks"]
)
def test_loopback_jwks_uri_may_use_http(url: str) -> None:
    assert Issuer(ISSUER, audiences=[AUDIENCE], jwks_uri=url).jwks_uri == url


def test_http_elsewhere_needs_an_explicit_opt_in() -> None:
    issuer = Issuer(
        ISSUER, audiences=[AUDIENCE], jwks_uri="http://id.internal/jwks", allow_insecure_http=True
    )
    assert issuer.jwks_uri == "http://id.internal/jwks"


def test_an_issuer_without_aud_needs_an_allow_list_of_clients() -> None:
    issuer = Issuer(ISSUER, jwks={"keys": []}, allowed_client_ids=["web"])
    assert issuer.audiences is None
    assert issuer.allowed_client_ids == ("web",)


def test_issuer_is_frozen_and_its_lists_are_copied(jwks: dict[str, Any]) -> None:
    audiences = [AUDIENCE]
    issuer = Issuer(ISSUER, audiences=audiences, jwks=jwks)
    audiences.append("https://evil.example.com")
    assert issuer.audiences == (AUDIENCE,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        issuer.issuer = "https://evil.example.com/"  # type: ignore[misc]


def test_the_secret_is_not_in_the_issuer_repr() -> None:
    issuer = Issuer(ISSUER, audiences=[AUDIENCE], secret=b"top-secret-value-0123456789abcdef")
    assert "top-secret" not in repr(issuer)


def test_claim_checks_given_as_a_generator_are_kept(jwks: dict[str, Any]) -> None:
    def refuse(payload: Any) -> bool:
        return False

    issuer = Issuer(ISSUER, audiences=[AUDIENCE], jwks=jwks, claim_checks=(c for c in [refuse]))
    assert issuer.claim_checks == (refuse,)
    validator = _validator(jwks, claim_checks=(c for c in [refuse]))
    assert validator.route_policy(ISSUER).claim_checks == (refuse,)
