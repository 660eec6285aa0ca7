"""docs/migrating.md, PyJWT section: the before and after code run against a local issuer and
agree on a good token; the stricter defaults listed there hold."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jwt
import pytest

from jwkguard import TokenError
from jwkguard.errors import ExpiredToken
from jwkguard.testing import LocalIssuer

PAGE = Path(__file__).resolve().parents[2] / "docs" / "migrating.md"


def blocks(heading: str, lang: str = "python") -> list[str]:
    """The code blocks of ``lang`` in the section under ``heading``."""
    text = PAGE.read_text()
    section = text[text.index(heading) :]
    section = section[: section.find("\n## ", 3)] if "\n## " in section[3:] else section
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.DOTALL)


def run(source: str, issuer: LocalIssuer) -> dict[str, Any]:
    source = source.replace("https://id.example.com/jwks.json", issuer.jwks_uri)
    source = source.replace("https://id.example.com/", issuer.url)
    namespace: dict[str, Any] = {"__name__": "snippet"}
    exec(compile(source, "snippet", "exec"), namespace)  # noqa: S102
    return namespace


def test_pyjwt_before_and_after_agree_and_after_is_stricter(local_issuer: LocalIssuer) -> None:
    before_source, after_source = blocks("## From PyJWT and PyJWKClient")
    before = run(before_source, local_issuer)["claims_of"]
    namespace = run(after_source, local_issuer)
    after = namespace["claims_of"]
    try:
        token = local_issuer.mint(subject="ada", scopes=["orders:read"])
        assert dict(after(token)) == before(token)
        expired = local_issuer.mint(lifetime=-120)
        with pytest.raises(jwt.ExpiredSignatureError):
            before(expired)
        with pytest.raises(ExpiredToken):
            after(expired)
        # Stricter: no exp is accepted by PyJWT's defaults, refused here.
        no_exp = local_issuer.mint(omit=("exp",))
        assert before(no_exp)["sub"] == "user-123"
        with pytest.raises(TokenError) as caught:
            after(no_exp)
        assert caught.value.claim == "exp"
    finally:
        namespace["validator"].close()


def test_the_unexecuted_before_blocks_are_text() -> None:
    assert blocks("## From flask-jwt-extended", "text")
    assert blocks("## From fastapi-azure-auth", "text")
