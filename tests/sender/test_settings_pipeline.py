"""An adapter's settings object becomes its request pipeline through one function."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jwkguard import Validator
from jwkguard.sender import SenderSettings, build_pipeline, build_sender_settings
from jwkguard.testing import SigningKey

from ..helpers import validator_trusting


@dataclass(frozen=True)
class _AdapterSettings:
    realm: str = "api"
    allow_query_token: str | bool = "never"
    sender: SenderSettings = field(default_factory=SenderSettings)
    resource: Any = None


def test_sender_settings_default_to_no_constraints_and_no_introspector() -> None:
    settings = SenderSettings()
    assert settings.constraints.inactive
    assert settings.introspector is None


def test_the_pipeline_follows_the_adapters_settings(rsa_key: SigningKey) -> None:
    validator: Validator = validator_trusting(rsa_key)
    sender = build_sender_settings({"REQUIRE_CLIENT_CERTIFICATE": True})
    settings = _AdapterSettings(
        realm="orders",
        allow_query_token=True,
        sender=sender,
        resource="https://api.example.com",
    )
    pipeline = build_pipeline(validator, settings)
    assert pipeline.validator is validator
    assert pipeline.realm == "orders"
    assert pipeline.sender is sender.constraints
    assert pipeline.introspector is None
    assert pipeline.resource is not None
    assert pipeline.resource.resource == "https://api.example.com"


def test_default_settings_give_the_default_pipeline(rsa_key: SigningKey) -> None:
    pipeline = build_pipeline(validator_trusting(rsa_key), _AdapterSettings())
    assert pipeline.realm == "api"
    assert pipeline.sender.inactive
    assert pipeline.resource is None
