"""Typed claims in Flask views: ``claims_as(OrderClaims)`` inside a protected view."""

from __future__ import annotations

from typing import TypeVar

from flask import current_app

from jwkguard import TokenError
from jwkguard.pipeline import error_response
from jwkguard.typed import claims_as as _claims_as

from ._errors import BearerError
from ._request import _current_claims, state_of

__all__ = ["claims_as"]

T = TypeVar("T")


def claims_as(model: type[T]) -> T:
    """The current request's verified claims as ``model`` (dataclass, TypedDict, pydantic).

    Raises:
        BearerError: A claim is missing or of the wrong type; the extension's handler answers
            401 ``invalid_token`` (reason ``invalid_claim``).
        RuntimeError: The view is not protected (no claims on this request).
    """
    claims = _current_claims()
    try:
        return _claims_as(claims, model)
    except TokenError as exc:
        realm = state_of(current_app).realm
        raise BearerError(error_response(exc, realm=realm), exc) from None
