"""RFC 6750 answers in Starlette terms: the exception the dependency raises and its handler."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from jwkguard import Validator
from jwkguard.pipeline import ErrorResponse

__all__ = ["BearerError", "bearer_error_handler", "install", "to_response"]

VALIDATOR_STATE = "jwkguard_validator"


class BearerError(HTTPException):
    """A refused request, carrying the RFC 6750 answer (status, challenge and JSON body).

    A subclass of FastAPI's ``HTTPException``: without :func:`install`, FastAPI's own handler
    answers with the right status and headers and the body under ``detail``; with it, the body
    is the shared jwkguard contract (``error``, ``error_description``, ``reason``).
    """

    def __init__(self, response: ErrorResponse) -> None:
        super().__init__(
            status_code=response.status_code, detail=response.body, headers=response.headers
        )
        self.response = response


def to_response(error: ErrorResponse) -> Response:
    """A Starlette response for an :class:`jwkguard.pipeline.ErrorResponse`."""
    return Response(
        content=error.body_bytes(),
        status_code=error.status_code,
        headers=error.headers,
        media_type="application/json",
    )


async def bearer_error_handler(request: Request, exc: Exception) -> Response:
    """Exception handler answering a :class:`BearerError` with the shared JSON body."""
    if not isinstance(exc, BearerError):  # registered for BearerError only
        raise exc
    return to_response(exc.response)


def install(app: Starlette, validator: Validator | None = None) -> None:
    """Register the error handler on ``app``, and the validator the default dependency uses.

    Call it once, right after creating the app (before it serves its first request).

    Args:
        app: The FastAPI (or Starlette) application.
        validator: The validator behind :data:`CurrentClaims` and :data:`OptionalClaims`
            (stored on ``app.state``); ``JWTBearer(validator)`` instances do not need it.
    """
    app.add_exception_handler(BearerError, bearer_error_handler)
    if validator is not None:
        setattr(app.state, VALIDATOR_STATE, validator)
