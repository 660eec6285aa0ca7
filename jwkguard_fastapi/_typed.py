"""``JWTBearer.typed(Model)``: the verified claims as a pydantic model, dataclass or TypedDict."""

# No `from __future__ import annotations`: FastAPI reads the dependency's annotations, and
# they name the closure's `auth`.

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import Security
from starlette.requests import HTTPConnection

from jwkguard import Claims, TokenError
from jwkguard.pipeline import error_response
from jwkguard.typed import check_model, claims_as

if TYPE_CHECKING:
    from ._dependency import JWTBearer

__all__ = ["typed_dependency"]

T = TypeVar("T")


# One dependency per (auth, model), so that dependency_overrides can name it.
_MADE: dict[tuple[object, object], Callable[..., Awaitable[Any]]] = {}


def typed_dependency(auth: "JWTBearer", model: type[T]) -> Callable[..., Awaitable[T | None]]:
    """The dependency behind ``auth.typed(model)``."""
    made = _MADE.get((auth, model))
    if made is None:
        check_model(model)
        made = _MADE[(auth, model)] = _make(auth, model)
    return made


def _make(auth: "JWTBearer", model: type[T]) -> Callable[..., Awaitable[Any]]:
    from ._dependency import _app_validator

    async def typed_claims(
        connection: HTTPConnection, claims: Annotated[Claims | None, Security(auth)]
    ) -> Any:
        if claims is None:
            return None
        try:
            return claims_as(claims, model)
        except TokenError as exc:
            validator = auth.validator if auth.validator is not None else _app_validator(connection)
            realm = auth.authenticator.pipeline(validator).realm
            raise auth._refuse(connection, exc, error_response(exc, realm=realm)) from None

    typed_claims.__name__ = f"typed_claims_{getattr(model, '__name__', 'model')}"
    return typed_claims
