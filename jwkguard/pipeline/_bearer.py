"""Bearer extraction and error responses (RFC 6750 sections 2 and 3).

The request pipeline (``_pipeline.py``) reads a request's credentials with
:func:`extract_credentials` and renders every refusal through :func:`error_response` or
:func:`missing_token_response` (by way of ``SenderConstraints.refusal``), so every adapter
answers alike. :func:`extract_bearer` remains for callers outside a pipeline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import (
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidRequest,
    KeysUnavailable,
    TokenError,
    UseDPoPNonce,
)

__all__ = ["ErrorResponse", "error_response", "extract_bearer", "missing_token_response"]

# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_B64TOKEN = B64TOKEN
# RFC 6750 section 3: challenge values are %x20-21 / %x23-5B / %x5D-7E (printable ASCII
# without '"' and '\\'); anything else is left out, so no value can break the header or fail
# to encode (a 500).
_QUOTE_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_OWS = " \t"  # RFC 9110 section 5.6.3


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """An HTTP answer for a refused request: status, headers and a JSON body."""

    status_code: int
    headers: dict[str, str]
    body: dict[str, str]

    def body_bytes(self) -> bytes:
        """The JSON body, encoded."""
        return json.dumps(self.body, separators=(",", ":")).encode()

    def wire_headers(self, body: bytes) -> list[tuple[str, str]]:
        """Every header of the answer on the wire: its own, JSON type, length, ``no-store``."""
        return [
            *self.headers.items(),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]


@dataclass(frozen=True, slots=True)
class Credentials:
    """An access token and the scheme it came with (``Bearer`` or ``DPoP``)."""

    scheme: str
    token: str


def extract_credentials(
    authorization: Sequence[str],
    *,
    query_token: str | None = None,
    allow_query: bool = False,
    schemes: Sequence[str] = ("Bearer", "DPoP"),
) -> Credentials | None:
    """The access token of a request with its scheme (RFC 6750 §2, RFC 9449 §7.1).

    Same rules as :func:`extract_bearer`, for each of ``schemes`` (matched case-insensitively;
    a query token counts as ``Bearer``).
    """
    if len(authorization) > 1:
        raise InvalidRequest(
            "Only one Authorization header is allowed", reason="multiple_authorization_headers"
        )
    found: Credentials | None = None
    if authorization:
        # Only HTTP's optional whitespace (SP, HTAB): str.strip() would also drop NBSP, NEL and
        # other bytes a gateway keeps, giving one token two spellings.
        scheme, _, credentials = authorization[0].strip(_OWS).partition(" ")
        chosen = next((name for name in schemes if name.lower() == scheme.lower()), None)
        if chosen is not None:
            credentials = credentials.strip(_OWS)
            if not _B64TOKEN.fullmatch(credentials):
                raise InvalidRequest(
                    f"The Authorization header does not hold a well-formed {chosen} token",
                    reason="malformed_authorization_header",
                )
            found = Credentials(chosen, credentials)
    if query_token is not None:
        if not allow_query:
            raise InvalidRequest(
                "Access tokens in the query string are not accepted", reason="token_in_query"
            )
        if found is not None:
            raise InvalidRequest(
                "The access token was sent in more than one place", reason="multiple_tokens"
            )
        found = Credentials("Bearer", query_token)
    return found


def extract_bearer(
    authorization: Sequence[str],
    *,
    query_token: str | None = None,
    allow_query: bool = False,
) -> str | None:
    """The bearer token of a request, or None when it carries none.

    Args:
        authorization: Every ``Authorization`` header value of the request.
        query_token: The ``access_token`` query parameter, if present.
        allow_query: Accept the query parameter (RFC 6750 section 2.3 advises against it).

    Raises:
        InvalidRequest: Several ``Authorization`` headers, a token in two places, a bearer
            header without a well-formed token, or a query token when not allowed.
    """
    found = extract_credentials(
        authorization, query_token=query_token, allow_query=allow_query, schemes=("Bearer",)
    )
    return found.token if found is not None else None


def _quote(value: str) -> str:
    return _QUOTE_UNSAFE.sub("", value)


def _challenge(realm: str, params: Iterable[tuple[str, str]], scheme: str = "Bearer") -> str:
    parts = [f'realm="{_quote(realm)}"']
    parts.extend(f'{name}="{_quote(value)}"' for name, value in params)
    return f"{scheme} {', '.join(parts)}"


def missing_token_response(
    realm: str = "api",
    *,
    scheme: str = "Bearer",
    challenge_params: Iterable[tuple[str, str]] = (),
) -> ErrorResponse:
    """401 for a request without credentials: a challenge with no error code (section 3.1)."""
    return ErrorResponse(
        status_code=401,
        headers={"WWW-Authenticate": _challenge(realm, challenge_params, scheme)},
        body={
            "error": "unauthorized",
            "error_description": "An access token is required",
            "reason": "missing_token",
        },
    )


def error_response(
    exc: TokenError,
    *,
    realm: str = "api",
    required_scopes: Iterable[str] = (),
    scheme: str = "Bearer",
    challenge_params: Iterable[tuple[str, str]] = (),
) -> ErrorResponse:
    """The RFC 6750 answer for a refused token: 400, 401, 403, or 503 with ``Retry-After``.

    ``scheme="DPoP"`` with ``challenge_params=[("algs", "ES256 RS256")]`` gives the RFC 9449
    section 7.1 challenge; a ``UseDPoPNonce`` error adds the ``DPoP-Nonce`` header; an
    ``InsufficientUserAuthentication`` error adds ``acr_values`` and ``max_age`` (RFC 9470
    section 3). ``challenge_params`` come last (e.g. RFC 9728 ``resource_metadata``).
    """
    body = {"error": exc.error, "error_description": exc.description, "reason": exc.reason}
    if isinstance(exc, KeysUnavailable):
        return ErrorResponse(
            status_code=503,
            headers={"Retry-After": str(exc.retry_after)},
            body=body,
        )
    params: list[tuple[str, str]] = [
        ("error", exc.error),
        ("error_description", exc.description),
    ]
    scopes = set(required_scopes)
    if isinstance(exc, InsufficientScope):
        scopes |= exc.required_scopes
    if scopes and exc.error == "insufficient_scope":
        params.append(("scope", " ".join(sorted(scopes))))
    if isinstance(exc, InsufficientUserAuthentication):
        # RFC 9470 section 3: what a new authentication must satisfy.
        if exc.acr_values:
            params.append(("acr_values", " ".join(exc.acr_values)))
        if exc.max_age is not None:
            params.append(("max_age", str(exc.max_age)))
    params.extend(challenge_params)
    headers = {"WWW-Authenticate": _challenge(realm, params, scheme)}
    if isinstance(exc, UseDPoPNonce):
        headers["DPoP-Nonce"] = exc.nonce
    return ErrorResponse(status_code=exc.status_code, headers=headers, body=body)
