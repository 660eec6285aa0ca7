"""Exempt paths and methods: one syntax for every adapter, never stretched by a spelling."""

from __future__ import annotations

import pytest

from jwkguard.errors import ConfigurationError
from jwkguard.pipeline import Exemptions


@pytest.fixture
def exemptions() -> Exemptions:
    return Exemptions(["/health", "/public/", "/static/*"])


@pytest.mark.parametrize("path", ["/health", "/public/x", "/public/a/b.css", "/static/app.css"])
def test_exact_paths_and_subtrees_are_exempt(exemptions: Exemptions, path: str) -> None:
    assert exemptions("GET", path)


@pytest.mark.parametrize(
    "path",
    [
        "/health/live",  # an exact entry is not a subtree
        "/healthz",
        "/public",  # a subtree entry covers what lies below, not itself
        "/staticky",
        "/public/../admin",
        "/public/./x",
        "/public//x",
        "/public/x;y",
        "/public/a\\b",
        "/public/a\x00",
        "/public/..",
    ],
)
def test_other_paths_and_other_spellings_are_not(exemptions: Exemptions, path: str) -> None:
    assert not exemptions("GET", path)


def test_options_is_exempt_by_default_and_can_be_protected() -> None:
    assert Exemptions()("OPTIONS", "/anything")
    assert not Exemptions(methods=())("OPTIONS", "/anything")
    assert not Exemptions()("GET", "/anything")


@pytest.mark.parametrize(
    "paths", [["health"], ["/"], ["/api*"], ["/a/*/b"], ["/a/../b"], "/health", [3]]
)
def test_ambiguous_or_malformed_entries_are_refused(paths: object) -> None:
    with pytest.raises(ConfigurationError):
        Exemptions(paths)  # type: ignore[arg-type]
