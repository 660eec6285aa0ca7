"""Refusals as Flask errors: the RFC 6750 answer, raised as an exception users can handle."""

from __future__ import annotations

from flask import Response
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from jwkguard import TokenError
from jwkguard.pipeline import ErrorResponse

__all__ = ["BearerError", "bearer_error_handler"]


class BearerError(HTTPException):
    """A request refused under RFC 6750 section 3: 400, 401, 403 or 503.

    ``require`` and ``protect`` raise it; the handler that ``init_app`` registers answers with
    the prepared response (JSON body, ``WWW-Authenticate`` or ``Retry-After``). Replace that
    handler with ``@app.errorhandler(BearerError)`` or per blueprint.

    Attributes:
        code: The HTTP status.
        answer: The status, headers and JSON body, identical across jwkguard adapters.
        token_error: The refusal from the validator, or None when no token was sent.
    """

    def __init__(self, answer: ErrorResponse, token_error: TokenError | None = None) -> None:
        response = Response(
            answer.body_bytes(),
            status=answer.status_code,
            headers=answer.headers,
            content_type="application/json",
        )
        super().__init__(answer.body["error_description"], response)
        # The class keeps `code = None` so Flask matches handlers by class, not by status.
        self.code = answer.status_code
        self.answer = answer
        self.token_error = token_error

    @property
    def reason(self) -> str:
        """The stable machine-readable reason, e.g. ``expired`` or ``missing_token``."""
        return self.answer.body["reason"]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, reason={self.reason!r})"


def bearer_error_handler(error: BearerError) -> WerkzeugResponse:
    """The default handler: the prepared RFC 6750 response."""
    return error.get_response()
