"""Helpers shared by the test modules: tokens for the suite's issuer, a validator trusting one
key, Authorization headers, and the refusal (or outcome) a validator gives.

Fixtures live in the conftest files; these are plain functions a module imports.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pytest

from jwkguard import Issuer, TokenError, Validator
from jwkguard.testing import LocalIssuer, SigningKey, mint_token

from .conftest import AUDIENCE, ISSUER, FakeClock

Mint = Callable[..., str]


def mint(key: SigningKey, clock: FakeClock | None = None, **claims: Any) -> str:
    """A token signed by ``key`` for the suite's ``ISSUER`` and ``AUDIENCE``, issued at ``clock``'s
    time when one is given (else now); ``claims`` may override any of these and take anything
    else ``mint_token`` takes."""
    claims.setdefault("issuer", ISSUER)
    claims.setdefault("audience", AUDIENCE)
    if clock is not None:
        claims.setdefault("now", clock.now)
    return mint_token(key, **claims)


def minter(key: SigningKey, clock: FakeClock | None = None) -> Mint:
    """``mint`` bound to ``key`` (and ``clock``): what the ``mint`` fixtures give a test."""
    return partial(mint, key, clock)


def validator_trusting(key: SigningKey, **options: Any) -> Validator:
    """A validator trusting ``key`` alone for ``ISSUER`` and ``AUDIENCE`` (RS256 unless
    ``options`` name other algorithms)."""
    options.setdefault("algorithms", ["RS256"])
    issuer = Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [key.public_jwk]})
    return Validator(issuers=[issuer], **options)


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def bearer_from(issuer: LocalIssuer, **claims: Any) -> dict[str, str]:
    """The Authorization header for a fresh token from ``issuer`` carrying ``claims``."""
    return bearer(issuer.mint(**claims))


def refusal(validator: Validator, token: Any, **options: Any) -> TokenError:
    """The ``TokenError`` that ``validator.validate(token, **options)`` raises (fails if none)."""
    with pytest.raises(TokenError) as caught:
        validator.validate(token, **options)
    return caught.value


async def arefusal(validator: Validator, token: Any, **options: Any) -> TokenError:
    """The ``TokenError`` that ``validator.avalidate(token, **options)`` raises (fails if none)."""
    with pytest.raises(TokenError) as caught:
        await validator.avalidate(token, **options)
    return caught.value


def outcome(validator: Validator, token: str) -> str:
    """``"ok"`` if ``validator`` accepts ``token``, else the refusal's ``reason``."""
    try:
        validator.validate(token)
    except TokenError as exc:
        return exc.reason
    return "ok"


def raw_request(
    base_url: str, method: str, target: str, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    """Send ``target`` exactly as written: no client-side normalisation of dot segments,
    escapes or header bytes (httpx would tidy an attack away). The body is read."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request(method, target, headers=headers or {})
        answer = connection.getresponse()
        answer.read()
        return answer
    finally:
        connection.close()
