"""Test helpers: fake claims through ``app.dependency_overrides``, or a validator swapped in.

Example::

    from jwkguard.testing import make_claims
    from jwkguard_fastapi.testing import claims_override

    app.dependency_overrides[auth] = claims_override(make_claims(scopes=["orders:read"]))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from fastapi.security import SecurityScopes
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp

from jwkguard import Claims, RoutePolicy, Validator
from jwkguard.pipeline import view_from_asgi
from jwkguard.testing import fake_pipeline

from ._dependency import JWTBearer
from ._responses import VALIDATOR_STATE

__all__ = ["claims_override", "use_validator"]

ClaimsDependency = Callable[[HTTPConnection, SecurityScopes], Awaitable[Claims]]


def claims_override(claims: Claims, *, realm: str = "api") -> ClaimsDependency:
    """A dependency to put in ``app.dependency_overrides[auth]``: every request has ``claims``.

    No token, key or issuer is needed. The scopes of ``Security(auth, scopes=[...])`` are still
    checked, so a missing scope is answered 403 ``insufficient_scope`` as in production; the
    claims are also on ``request.state.claims``.
    """
    pipeline = fake_pipeline(claims, realm=realm)

    async def override(request: HTTPConnection, security_scopes: SecurityScopes) -> Claims:
        policy = RoutePolicy(scopes=frozenset(security_scopes.scopes))
        decision = await pipeline.arun(view_from_asgi(request.scope), policy)
        claims = decision.claims
        if claims is None:
            response = decision.response or pipeline.missing(policy)
            raise JWTBearer._refuse(request, decision.error, response)
        request.scope.setdefault("state", {})["claims"] = claims
        return claims

    return override


@contextmanager
def use_validator(app: ASGIApp, validator: Validator, *dependencies: JWTBearer) -> Iterator[None]:
    """Point ``app`` (its ``install`` validator) and ``dependencies`` at ``validator``.

    For tests against a local issuer: the dependencies built with their own validator and the
    app's default one are switched for the block, then restored.
    """
    state = getattr(app, "state", None)
    if state is None:
        raise TypeError("use_validator needs a FastAPI or Starlette app")
    before_app = getattr(state, VALIDATOR_STATE, None)
    before = [(dependency, dependency.validator) for dependency in dependencies]
    setattr(state, VALIDATOR_STATE, validator)
    for dependency in dependencies:
        dependency.validator = validator
    try:
        yield
    finally:
        setattr(state, VALIDATOR_STATE, before_app)
        for dependency, previous in before:
            dependency.validator = previous
