"""The request pipeline: one check order, sync and async alike, for every adapter."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

from jwkguard import Event, RequestPipeline, RoutePolicy, Validator
from jwkguard.errors import ConfigurationError
from jwkguard.lifecycle import Lifecycle, MemoryStore, ReuseWatch
from jwkguard.pipeline import (
    Decision,
    EnvironHeaders,
    PipelineOptions,
    RequestView,
    view_from_asgi,
    view_from_environ,
)
from jwkguard.sender import Introspector
from jwkguard.testing import LocalIssuer, SigningKey

from ..helpers import Mint, minter, validator_trusting


class Headers:
    def __init__(self, **values: str | list[str]) -> None:
        self.values = {
            name.replace("_", "-").lower(): value if isinstance(value, list) else [value]
            for name, value in values.items()
        }

    def getlist(self, name: str) -> list[str]:
        return self.values.get(name, [])


def view(query: str = "", client: str | None = "127.0.0.9", **headers: Any) -> RequestView:
    return RequestView(
        method="GET",
        headers=Headers(**headers),
        query=query,
        url=lambda: "https://api.example.com/orders",
        client=client,
    )


@pytest.fixture
def validator(rsa_key: SigningKey) -> Validator:
    return validator_trusting(rsa_key)


@pytest.fixture
def mint(rsa_key: SigningKey) -> Mint:
    """Tokens issued now: this module's validators read the real clock."""
    return minter(rsa_key)


def both(pipeline: RequestPipeline, request: RequestView, policy: RoutePolicy) -> Decision:
    """Run the sync and the async driver; they must agree."""
    sync = pipeline.run(request, policy)

    async def run_async() -> Decision:
        try:
            return await pipeline.arun(request, policy)
        finally:
            if pipeline.introspector is not None:
                await pipeline.introspector.aclose()
            await pipeline.validator.aclose()

    asynchronous = asyncio.run(run_async())
    assert sync.allowed == asynchronous.allowed
    assert sync.response == asynchronous.response
    return sync


def test_a_valid_token_gives_its_claims(validator: Validator, mint: Any) -> None:
    pipeline = RequestPipeline(validator)
    decision = both(pipeline, view(authorization=f"Bearer {mint()}"), RoutePolicy())
    assert decision.allowed
    assert decision.claims is not None
    assert decision.claims.subject == "user-123"
    assert decision.source == "header"


def test_no_token_is_a_401_challenge_without_error_code(validator: Validator) -> None:
    decision = both(RequestPipeline(validator, realm="orders"), view(), RoutePolicy())
    assert decision.response is not None
    assert decision.response.status_code == 401
    assert decision.response.headers["WWW-Authenticate"] == 'Bearer realm="orders"'
    assert decision.error is None


def test_optional_route_passes_without_token_but_refuses_a_bad_one(
    validator: Validator,
) -> None:
    pipeline = RequestPipeline(validator)
    optional = RoutePolicy(optional=True)
    assert both(pipeline, view(), optional).allowed
    refused = both(pipeline, view(authorization="Bearer not.a.jwt"), optional)
    assert refused.response is not None
    assert refused.response.status_code == 401


def test_scopes_are_checked_after_the_signature(validator: Validator, mint: Any) -> None:
    """A forged token learns nothing about the scopes a route needs."""
    pipeline = RequestPipeline(validator)
    policy = RoutePolicy(scopes=frozenset({"orders:write"}))
    forged = mint()[:-4] + "AAAA"
    bad = both(pipeline, view(authorization=f"Bearer {forged}"), policy)
    assert bad.response is not None
    assert bad.response.status_code == 401
    assert "scope" not in bad.response.headers["WWW-Authenticate"]
    weak = both(pipeline, view(authorization=f"Bearer {mint(scopes='orders:read')}"), policy)
    assert weak.response is not None
    assert weak.response.status_code == 403
    assert 'scope="orders:write"' in weak.response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("query", "allow", "reason"),
    [
        ("access_token=abc.def.ghi", "never", "token_in_query"),
        ("access_token=a.b.c&access_token=d.e.f", "always", "multiple_tokens"),
    ],
)
def test_query_tokens_are_refused_unless_allowed_and_never_twice(
    validator: Validator, query: str, allow: Any, reason: str
) -> None:
    decision = both(RequestPipeline(validator, allow_query=allow), view(query), RoutePolicy())
    assert decision.response is not None
    assert decision.response.status_code == 400
    assert decision.response.body["reason"] == reason


# Names an upstream reads as ``access_token``: decoded (any framework), after ``;`` (frameworks
# that split on it), with PHP's mangling of ``.``, space and ``[`` into ``_``.
SPELLED_ACCESS_TOKEN = [
    "%61ccess_token",
    "access%5Ftoken",
    "%61%63%63%65%73%73%5f%74%6f%6b%65%6e",
    "access.token",
    "access+token",
    "access%20token",
    "access[token",
]


@pytest.mark.parametrize("name", SPELLED_ACCESS_TOKEN)
@pytest.mark.parametrize("prefix", ["", "x=1&", "x=1;"])
def test_a_query_token_is_found_however_its_name_is_spelled(
    validator: Validator, mint: Any, name: str, prefix: str
) -> None:
    """A token an upstream could read from the query is never missed by the pipeline."""
    token = mint()
    never = both(RequestPipeline(validator), view(f"{prefix}{name}={token}"), RoutePolicy())
    assert never.response is not None
    assert never.response.body["reason"] == "token_in_query"
    header = view(f"{prefix}{name}={token}", authorization=f"Bearer {token}")
    twice = both(RequestPipeline(validator, allow_query="always"), header, RoutePolicy())
    assert twice.response is not None
    assert twice.response.body["reason"] == "multiple_tokens"


@pytest.mark.parametrize(
    "query", ["accessXtoken=1", "ACCESS_TOKEN=1", "x=access_token", "access=1&token=2", "q=%41"]
)
def test_other_query_names_are_no_token(validator: Validator, mint: Any, query: str) -> None:
    decision = both(
        RequestPipeline(validator), view(query, authorization=f"Bearer {mint()}"), RoutePolicy()
    )
    assert decision.allowed


def test_a_token_in_the_header_and_the_query_is_ambiguous(validator: Validator, mint: Any) -> None:
    token = mint()
    pipeline = RequestPipeline(validator, allow_query="always")
    decision = both(
        pipeline, view(f"access_token={token}", authorization=f"Bearer {token}"), RoutePolicy()
    )
    assert decision.response is not None
    assert decision.response.body["reason"] == "multiple_tokens"
    alone = both(pipeline, view(f"access_token={token}"), RoutePolicy())
    assert alone.allowed
    assert alone.source == "query"


def test_two_authorization_headers_are_refused(validator: Validator, mint: Any) -> None:
    token = mint()
    decision = both(
        RequestPipeline(validator),
        view(authorization=[f"Bearer {token}", f"Bearer {token}"]),
        RoutePolicy(),
    )
    assert decision.response is not None
    assert decision.response.status_code == 400
    assert decision.response.body["reason"] == "multiple_authorization_headers"


def test_a_joined_wsgi_authorization_header_is_malformed(validator: Validator, mint: Any) -> None:
    token = mint()
    request = view_from_environ(
        {"REQUEST_METHOD": "GET", "HTTP_AUTHORIZATION": f"Bearer {token}, Bearer {token}"}
    )
    decision = both(RequestPipeline(validator), request, RoutePolicy())
    assert decision.response is not None
    assert decision.response.status_code == 400


def test_environ_headers_split_joined_dpop_proofs() -> None:
    headers = EnvironHeaders({"HTTP_DPOP": "a.b.c, d.e.f", "HTTP_X_ONE": "1"})
    assert headers.getlist("dpop") == ["a.b.c", "d.e.f"]
    assert headers.getlist("x-one") == ["1"]
    assert headers.getlist("x-two") == []


def test_asgi_view_reads_the_scope() -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "https",
        "path": "/orders/1",
        "raw_path": b"/orders/1",
        "query_string": b"a=1",
        "headers": [(b"host", b"api.example.com"), (b"dpop", b"x"), (b"dpop", b"y")],
        "client": ("10.0.0.1", 5000),
    }
    request = view_from_asgi(scope)
    assert request.method == "POST"
    assert request.client == "10.0.0.1"
    assert request.url() == "https://api.example.com/orders/1?a=1"
    assert request.headers.getlist("dpop") == ["x", "y"]


def test_a_bound_token_without_a_verifier_is_refused(validator: Validator, mint: Any) -> None:
    token = mint(cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
    decision = both(
        RequestPipeline(validator), view(authorization=f"Bearer {token}"), RoutePolicy()
    )
    assert decision.response is not None
    assert decision.response.status_code == 401


def test_a_route_requiring_dpop_refuses_a_bearer_token_with_a_dpop_challenge(
    validator: Validator, mint: Any
) -> None:
    from jwkguard.sender import DPoPVerifier, SenderConstraints

    pipeline = RequestPipeline(validator, sender=SenderConstraints(dpop=DPoPVerifier()))
    decision = both(pipeline, view(authorization=f"Bearer {mint()}"), RoutePolicy(dpop=True))
    assert decision.response is not None
    assert decision.response.status_code == 401
    assert decision.response.headers["WWW-Authenticate"].startswith("DPoP ")
    assert decision.response.body["reason"] == "dpop_required"


def test_policies_that_cannot_be_enforced_fail_at_declaration(validator: Validator) -> None:
    pipeline = RequestPipeline(validator)
    with pytest.raises(ConfigurationError):
        pipeline.check_policy(RoutePolicy(introspect=True))
    with pytest.raises(ConfigurationError):
        pipeline.check_policy(RoutePolicy(dpop=True))
    with pytest.raises(ConfigurationError):
        RoutePolicy(scopes="orders:read")  # type: ignore[arg-type]


def test_pipeline_options_name_request_pipeline_keywords_that_adapters_pass_on() -> None:
    """Every name :class:`PipelineOptions` declares is a keyword of the pipeline and of
    ``check_options``, so adapters can pass their options on as given."""
    pipeline_keywords = inspect.signature(RequestPipeline).parameters
    checked_keywords = inspect.signature(RequestPipeline.check_options).parameters
    for name in PipelineOptions.__annotations__:
        assert pipeline_keywords[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert checked_keywords[name].kind is inspect.Parameter.KEYWORD_ONLY


def test_check_options_refuses_a_resource_that_is_neither_metadata_nor_a_url() -> None:
    RequestPipeline.check_options(resource="https://api.example.com")
    with pytest.raises(ConfigurationError, match="resource must be"):
        RequestPipeline.check_options(resource=42)  # type: ignore[arg-type]


def test_authorize_adds_a_route_policy_without_validating_again(
    validator: Validator, mint: Any
) -> None:
    pipeline = RequestPipeline(validator)
    request = view(authorization=f"Bearer {mint(scopes='a b')}")
    first = pipeline.run(request, RoutePolicy(scopes=frozenset({"a"})))
    assert first.allowed
    calls: list[str] = []
    original = validator.validate
    validator.validate = lambda *a, **k: calls.append("validate") or original(*a, **k)  # type: ignore[method-assign]
    assert pipeline.authorize(first, request, RoutePolicy(scopes=frozenset({"b"}))).allowed
    refused = pipeline.authorize(first, request, RoutePolicy(scopes=frozenset({"c"})))
    assert refused.response is not None
    assert refused.response.status_code == 403
    assert calls == []


# -- introspection: opaque tokens and hybrid mode ------------------------------------------


@pytest.fixture
def issuer_with_introspection() -> Iterator[tuple[LocalIssuer, Any]]:
    with LocalIssuer() as issuer:
        endpoint = issuer.enable_introspection()
        yield issuer, endpoint


def _introspector(issuer: LocalIssuer) -> Introspector:
    return Introspector(
        endpoint=f"{issuer.url}/introspect",
        client_id="resource-server",
        client_secret="s3cret-for-tests",
    )


def test_an_opaque_token_goes_to_the_introspector(
    issuer_with_introspection: tuple[LocalIssuer, Any],
) -> None:
    issuer, endpoint = issuer_with_introspection
    validator = Validator(
        issuers=[issuer.issuer_config(jwks_uri=issuer.jwks_uri)], algorithms=["RS256"]
    )
    endpoint.opaque_tokens["opaque-token-1"] = {"sub": "svc", "scope": "orders:read"}
    pipeline = RequestPipeline(validator, introspector=_introspector(issuer))
    policy = RoutePolicy(scopes=frozenset({"orders:read"}))
    decision = both(pipeline, view(authorization="Bearer opaque-token-1"), policy)
    assert decision.allowed
    assert decision.introspected
    assert decision.claims is not None
    assert decision.claims.subject == "svc"
    inactive = both(pipeline, view(authorization="Bearer opaque-token-2"), policy)
    pipeline.introspector.close()  # type: ignore[union-attr]
    assert inactive.response is not None
    assert inactive.response.status_code == 401
    # Without an introspector an opaque token is malformed, as before.
    plain = both(RequestPipeline(validator), view(authorization="Bearer opaque-token-1"), policy)
    validator.close()
    assert plain.response is not None
    assert plain.response.body["reason"] == "malformed"


def test_hybrid_routes_ask_the_introspector_about_a_valid_jwt(
    issuer_with_introspection: tuple[LocalIssuer, Any],
) -> None:
    issuer, endpoint = issuer_with_introspection
    validator = Validator(
        issuers=[issuer.issuer_config(jwks_uri=issuer.jwks_uri)], algorithms=["RS256"]
    )
    pipeline = RequestPipeline(validator, introspector=_introspector(issuer))
    token = issuer.mint()
    endpoint.revoked.add(token)  # valid locally, inactive at the authorization server
    assert both(pipeline, view(authorization=f"Bearer {token}"), RoutePolicy()).allowed
    hybrid = both(pipeline, view(authorization=f"Bearer {token}"), RoutePolicy(introspect=True))
    assert hybrid.response is not None
    assert hybrid.response.status_code == 401
    assert hybrid.response.body["reason"] == "inactive"
    validator.close()
    pipeline.introspector.close()  # type: ignore[union-attr]


# -- lifecycle: reuse alerts and fleet refresh ---------------------------------------------


def test_observe_raises_a_reuse_alert_from_too_many_addresses(
    rsa_key: SigningKey, mint: Any
) -> None:
    events: list[Event] = []
    lifecycle = Lifecycle(MemoryStore(), reuse=ReuseWatch(max_addresses=2, window=60))
    validator = validator_trusting(rsa_key, lifecycle=lifecycle, on_event=events.append)
    pipeline = RequestPipeline(validator)
    token = mint()
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        assert pipeline.run(view(authorization=f"Bearer {token}", client=address)).allowed
    alerts = [event for event in events if event.kind == "token_reuse"]
    assert len(alerts) == 1
    assert alerts[0].detail["address"] == "10.0.0.3"


def test_the_pipeline_attaches_the_lifecycle_so_force_refresh_reaches_the_keys(
    validator: Validator,
) -> None:
    lifecycle = Lifecycle(MemoryStore())
    attached: list[Validator] = []
    lifecycle.attach = attached.append  # type: ignore[method-assign]
    validator.lifecycle = lifecycle
    RequestPipeline(validator)
    assert attached == [validator]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "always"), (False, "never"), ("never", "never"), ("websocket", "websocket")],
)
def test_query_token_settings_take_one_spelling_everywhere(value: Any, expected: str) -> None:
    from jwkguard.pipeline import query_policy

    assert query_policy(value) == expected


@pytest.mark.parametrize("value", ["yes", 1, None, "Always"])
def test_other_query_token_settings_are_refused(value: Any) -> None:
    from jwkguard.pipeline import query_policy

    with pytest.raises(ConfigurationError, match="must be True or False"):
        query_policy(value, "ALLOW_QUERY_TOKEN")


def test_a_websocket_only_query_policy_refuses_query_tokens_on_http(
    validator: Validator, mint: Any
) -> None:
    pipeline = RequestPipeline(validator, allow_query="websocket")
    http = both(pipeline, view(f"access_token={mint()}"), RoutePolicy())
    assert http.response is not None
    assert http.response.body["reason"] == "token_in_query"
    socket = RequestView(
        method="GET", headers=Headers(), query=f"access_token={mint()}", websocket=True
    )
    assert pipeline.run(socket).allowed
