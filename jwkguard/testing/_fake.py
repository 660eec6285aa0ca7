"""Fake claims for unit tests: no keys, no tokens, the route's own checks still applied."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from .._claims_result import Claims, read_scopes
from .._issuer import Issuer
from .._validator import Validator
from ..pipeline._bearer import Credentials
from ..pipeline._pipeline import RequestPipeline, TokenSource
from ..pipeline._request_view import RequestView
from ._keys import generate_key

__all__ = ["fake_pipeline", "make_claims"]

FAKE_ISSUER = "https://issuer.invalid/"
_FAKE_TOKEN = "fake.jwkguard.claims"  # noqa: S105 - a placeholder, never validated


def make_claims(
    *,
    subject: str = "user-123",
    scopes: Iterable[str] | str = (),
    issuer: str = FAKE_ISSUER,
    audience: str | list[str] = "https://api.example.com",
    lifetime: float = 300,
    scope_claim: str | None = None,
    **claims: Any,
) -> Claims:
    """A :class:`jwkguard.Claims` built without keys or a token, for unit tests.

    The payload holds ``iss``, ``sub``, ``aud``, ``iat``, ``exp``, the scopes as a ``scope``
    string, and any other claim given. Scopes are read from the payload the way the validator
    reads them (``scope``, ``scp``, or ``scope_claim`` such as ``permissions``).
    """
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": now,
        "exp": int(now + lifetime),
    }
    names = scopes.split() if isinstance(scopes, str) else list(scopes)
    if names:
        payload["scope"] = " ".join(names)
    payload.update(claims)
    return Claims(
        payload,
        header={"alg": "none", "typ": "at+jwt"},
        key_id=None,
        thumbprint="",
        scopes=read_scopes(payload, scope_claim),
    )


class _FixedClaims(Validator):
    """Answers every token with the same claims (the pipeline's validate step, faked)."""

    def __init__(self, claims: Claims) -> None:
        # A real (unused) key: the validator refuses an issuer without one.
        jwks = {"keys": [dict(generate_key("ES256").public_jwk)]}
        issuer = Issuer(FAKE_ISSUER, audiences=["fake"], jwks=jwks)
        super().__init__(issuers=[issuer], algorithms=["ES256"])
        self.fixed = claims

    def validate(self, token: str | bytes, *, scopes: Iterable[str] = ()) -> Claims:
        return self.fixed

    async def avalidate(self, token: str | bytes, *, scopes: Iterable[str] = ()) -> Claims:
        return self.fixed


class _FakePipeline(RequestPipeline):
    """Every request carries the fake claims; route policies (scopes...) still apply."""

    __slots__ = ()

    def credentials(
        self, request: RequestView, authorization: Any = None
    ) -> tuple[Credentials | None, TokenSource | None]:
        return Credentials("Bearer", _FAKE_TOKEN), "header"


def fake_pipeline(claims: Claims, *, realm: str = "api") -> RequestPipeline:
    """A request pipeline that gives every request ``claims``, token or not.

    The route's scopes are still checked (403 ``insufficient_scope``); keys, signatures and
    sender binding are not involved. The adapters' ``fake_claims`` helpers install it.
    """
    if not isinstance(claims, Claims):
        raise TypeError("fake claims must be a jwkguard.Claims (see make_claims)")
    return _FakePipeline(_FixedClaims(claims), realm=realm)
