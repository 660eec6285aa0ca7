"""RFC 9728 resource metadata and RFC 9470 step-up, decided once in the request pipeline."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jwkguard import RequestPipeline, RoutePolicy, Validator, build_validator
from jwkguard.errors import (
    AudienceMismatch,
    ConfigurationError,
    InsufficientUserAuthentication,
    InvalidClaim,
)
from jwkguard.pipeline import (
    ResourceMetadata,
    build_resource_metadata,
    check_resource_audience,
    error_response,
)
from jwkguard.sender import DPoPVerifier, SenderConstraints
from jwkguard.testing import SigningKey, mint_token

from ..conftest import AUDIENCE, ISSUER, FakeClock
from ..helpers import validator_trusting
from .test_pipeline import both, view

RESOURCE = "https://api.example.com/mcp"
METADATA_URL = "https://api.example.com/.well-known/oauth-protected-resource/mcp"


@pytest.fixture
def validator(rsa_key: SigningKey, clock: FakeClock) -> Validator:
    return validator_trusting(rsa_key, clock=clock, leeway=5)


# -- the metadata document ------------------------------------------------------------------


def test_metadata_path_inserts_the_well_known_prefix_before_the_resource_path() -> None:
    metadata = ResourceMetadata(RESOURCE)
    assert metadata.metadata_path == "/.well-known/oauth-protected-resource/mcp"
    assert metadata.metadata_url == METADATA_URL
    assert metadata.serves("/.well-known/oauth-protected-resource/mcp")
    assert not metadata.serves("/.well-known/oauth-protected-resource")


def test_a_resource_at_the_root_is_served_at_the_bare_well_known_path() -> None:
    for resource in ("https://api.example.com", "https://api.example.com/"):
        metadata = ResourceMetadata(resource)
        assert metadata.metadata_path == "/.well-known/oauth-protected-resource"
        assert (
            metadata.metadata_url == "https://api.example.com/.well-known/oauth-protected-resource"
        )


def test_describe_fills_authorization_servers_and_dpop_from_the_configuration(
    validator: Validator,
) -> None:
    sender = SenderConstraints(
        dpop=DPoPVerifier(algorithms=["ES256", "Ed25519"]), require_dpop=True
    )
    metadata = ResourceMetadata.describe(
        RESOURCE, validator=validator, sender=sender, scopes_supported=["tools:call"]
    )
    assert metadata.document() == {
        "resource": RESOURCE,
        "authorization_servers": [ISSUER],
        "scopes_supported": ["tools:call"],
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": ["ES256", "Ed25519"],
        "dpop_bound_access_tokens_required": True,
    }
    body = metadata.body_bytes()
    assert json.loads(body) == metadata.document()
    headers = dict(metadata.wire_headers(body))
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(body))


@pytest.mark.parametrize(
    "resource",
    ["http://api.example.com/mcp", "https://api.example.com/mcp#frag", "https://x/a?b=1", "mcp"],
)
def test_a_resource_that_is_not_an_https_url_without_fragment_or_query_is_refused(
    resource: str,
) -> None:
    with pytest.raises(ConfigurationError):
        ResourceMetadata(resource)


def test_http_is_accepted_for_a_loopback_resource() -> None:
    assert ResourceMetadata("http://127.0.0.1:8000/mcp").metadata_url == (
        "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp"
    )


def test_unknown_bearer_methods_and_extra_members_that_shadow_fields_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="bearer_methods_supported"):
        ResourceMetadata(RESOURCE, bearer_methods_supported=("cookie",))
    with pytest.raises(ConfigurationError, match="extra repeats"):
        ResourceMetadata(RESOURCE, extra={"resource": "https://other"})


def test_settings_build_metadata_from_a_url_or_a_mapping(validator: Validator) -> None:
    assert build_resource_metadata(None) is None
    from_url = build_resource_metadata(RESOURCE, validator=validator)
    assert from_url is not None
    assert from_url.authorization_servers == (ISSUER,)
    from_mapping = build_resource_metadata(
        {"RESOURCE": RESOURCE, "RESOURCE_NAME": "Tools"}, validator=validator
    )
    assert from_mapping is not None
    assert from_mapping.document()["resource_name"] == "Tools"
    with pytest.raises(ConfigurationError, match="RESOURCE: unknown resource metadata options"):
        build_resource_metadata({"resource": RESOURCE, "scope": ["x"]})


def test_the_resource_is_the_default_audience_of_issuers_that_name_none(
    rsa_key: SigningKey,
) -> None:
    validator = build_validator(
        {
            "issuers": [{"issuer": ISSUER, "jwks": {"keys": [rsa_key.public_jwk]}}],
            "algorithms": ["RS256"],
        },
        default_audience=RESOURCE,
    )
    assert validator.validate(mint_token(rsa_key, issuer=ISSUER, audience=RESOURCE))
    with pytest.raises(AudienceMismatch):
        validator.validate(mint_token(rsa_key, issuer=ISSUER, audience=AUDIENCE))


def test_check_resource_audience_needs_the_resource_in_aud() -> None:
    check_resource_audience({"aud": [AUDIENCE, RESOURCE]}, RESOURCE)
    with pytest.raises(AudienceMismatch):
        check_resource_audience({"aud": AUDIENCE}, RESOURCE)
    with pytest.raises(InvalidClaim, match="required"):
        check_resource_audience({}, RESOURCE)


# -- challenges -----------------------------------------------------------------------------


def test_every_challenge_names_the_resource_metadata(validator: Validator, mint: Any) -> None:
    pipeline = RequestPipeline(validator, resource=RESOURCE)
    expected = f'resource_metadata="{METADATA_URL}"'
    missing = both(pipeline, view(), RoutePolicy())
    invalid = both(pipeline, view(authorization="Bearer not.a.token"), RoutePolicy())
    scoped = both(
        pipeline,
        view(authorization=f"Bearer {mint(scope='a')}"),
        RoutePolicy(scopes=frozenset({"b"})),
    )
    for decision, status in ((missing, 401), (invalid, 401), (scoped, 403)):
        assert decision.response is not None
        assert decision.response.status_code == status
        assert expected in decision.response.headers["WWW-Authenticate"]
    assert 'scope="b"' in scoped.response.headers["WWW-Authenticate"]  # type: ignore[union-attr]


def test_without_a_resource_no_challenge_names_metadata(validator: Validator) -> None:
    decision = both(RequestPipeline(validator), view(), RoutePolicy())
    assert decision.response is not None
    assert "resource_metadata" not in decision.response.headers["WWW-Authenticate"]


def test_the_pipeline_describes_its_resource_from_its_validator(validator: Validator) -> None:
    pipeline = RequestPipeline(validator, resource=RESOURCE)
    assert pipeline.resource is not None
    assert pipeline.resource.authorization_servers == (ISSUER,)


# -- step-up (RFC 9470) ---------------------------------------------------------------------


def test_a_route_accepts_a_token_with_an_allowed_acr_and_a_recent_auth_time(
    validator: Validator, mint: Any, clock: FakeClock
) -> None:
    token = mint(acr="urn:mfa", auth_time=int(clock()) - 60)
    policy = RoutePolicy(acr_values=("urn:mfa", "urn:hwk"), max_age=300)
    decision = both(RequestPipeline(validator), view(authorization=f"Bearer {token}"), policy)
    assert decision.allowed


def test_a_weaker_acr_is_refused_with_insufficient_user_authentication(
    validator: Validator, mint: Any
) -> None:
    pipeline = RequestPipeline(validator, resource=RESOURCE)
    policy = RoutePolicy(acr_values=("urn:hwk", "urn:mfa"), max_age=300)
    decision = both(pipeline, view(authorization=f"Bearer {mint(acr='urn:pwd')}"), policy)
    assert decision.response is not None
    assert decision.response.status_code == 401
    assert isinstance(decision.error, InsufficientUserAuthentication)
    assert decision.error.reason == "acr_not_allowed"
    challenge = decision.response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_user_authentication"' in challenge
    assert 'acr_values="urn:hwk urn:mfa"' in challenge
    assert 'max_age="300"' in challenge
    assert f'resource_metadata="{METADATA_URL}"' in challenge
    assert decision.response.body["error"] == "insufficient_user_authentication"


def test_a_missing_acr_is_refused(validator: Validator, mint: Any) -> None:
    policy = RoutePolicy(acr_values=("urn:mfa",))
    decision = both(RequestPipeline(validator), view(authorization=f"Bearer {mint()}"), policy)
    assert decision.error is not None
    assert decision.error.reason == "acr_missing"
    assert decision.response is not None
    assert "max_age" not in decision.response.headers["WWW-Authenticate"]


def test_an_old_authentication_is_refused_past_max_age_and_leeway(
    validator: Validator, mint: Any, clock: FakeClock
) -> None:
    pipeline = RequestPipeline(validator)
    policy = RoutePolicy(max_age=300)
    recent = mint(auth_time=int(clock()) - 304)  # within the validator's 5 s leeway
    old = mint(auth_time=int(clock()) - 306)
    assert both(pipeline, view(authorization=f"Bearer {recent}"), policy).allowed
    decision = both(pipeline, view(authorization=f"Bearer {old}"), policy)
    assert decision.error is not None
    assert decision.error.reason == "authentication_too_old"
    assert decision.response is not None
    challenge = decision.response.headers["WWW-Authenticate"]
    assert 'max_age="300"' in challenge
    assert "acr_values" not in challenge


@pytest.mark.parametrize("auth_time", [None, "yesterday", True])
def test_a_route_with_max_age_needs_a_numeric_auth_time(
    validator: Validator, mint: Any, auth_time: Any
) -> None:
    claims = {} if auth_time is None else {"auth_time": auth_time}
    decision = both(
        RequestPipeline(validator),
        view(authorization=f"Bearer {mint(**claims)}"),
        RoutePolicy(max_age=60),
    )
    assert decision.error is not None
    assert decision.error.reason == "auth_time_missing"


def test_step_up_is_also_applied_by_authorize_on_a_judged_request(
    validator: Validator, mint: Any
) -> None:
    pipeline = RequestPipeline(validator)
    request = view(authorization=f"Bearer {mint(acr='urn:pwd')}")
    first = pipeline.run(request, RoutePolicy())
    assert first.allowed
    stricter = pipeline.authorize(first, request, RoutePolicy(acr_values=("urn:mfa",)))
    assert isinstance(stricter.error, InsufficientUserAuthentication)


@pytest.mark.parametrize(
    "options",
    [{"acr_values": "urn:mfa"}, {"acr_values": ["two words"]}, {"max_age": -1}, {"max_age": 1.5}],
)
def test_bad_step_up_options_fail_when_the_policy_is_built(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RoutePolicy(**options)


def test_with_scopes_keeps_the_step_up_requirements() -> None:
    policy = RoutePolicy(acr_values=("urn:mfa",), max_age=60).with_scopes(["a"])
    assert policy.acr_values == ("urn:mfa",)
    assert policy.max_age == 60
    assert policy.scopes == {"a"}


def test_error_response_renders_step_up_parameters_alone() -> None:
    response = error_response(InsufficientUserAuthentication(acr_values=("urn:mfa",)))
    assert response.status_code == 401
    assert 'acr_values="urn:mfa"' in response.headers["WWW-Authenticate"]
