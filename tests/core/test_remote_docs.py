"""The examples of docs/key-lifecycle.md and docs/providers.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

from jwkguard import Issuer, Validator

DOCS = Path(__file__).resolve().parents[2] / "docs"


def first_python_block(page: str) -> str:
    match = re.search(r"```python\n(.*?)```", (DOCS / page).read_text("utf-8"), re.DOTALL)
    assert match is not None
    return match.group(1)


def test_key_lifecycle_example_builds_the_three_kinds_of_issuer() -> None:
    namespace: dict[str, object] = {}
    exec(first_python_block("key-lifecycle.md"), namespace)  # noqa: S102 - our own docs
    assert namespace["Issuer"] is Issuer


def test_providers_example_builds_a_validator_without_any_io() -> None:
    namespace: dict[str, object] = {}
    exec(first_python_block("providers.md"), namespace)  # noqa: S102 - our own docs
    validator = namespace["validator"]
    assert isinstance(validator, Validator)
    with validator:
        assert [issuer.issuer for issuer in validator.issuers] == [
            "https://example.eu.auth0.com/",
            "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
        ]
