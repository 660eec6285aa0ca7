"""Sender constraints: one place where adapters enforce DPoP and certificate binding."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._claims_result import Claims
from ._dpop import DPoPProof, DPoPVerifier, confirmation_thumbprint
from ._mtls import check_certificate_binding
from .errors import ConfigurationError, InvalidDPoPProof

__all__ = ["PresentedRequest", "SenderConstraints"]


@dataclass(frozen=True, slots=True)
class PresentedRequest:
    """What an adapter knows of the request that carried the token.

    Attributes:
        scheme: The Authorization scheme the token came with (``Bearer`` or ``DPoP``).
        token: The access token.
        method: The HTTP method.
        url: The full request URL as the client addressed it.
        dpop_proofs: Every ``DPoP`` header value (RFC 9449 allows exactly one).
        client_certificate: The TLS client certificate (DER or PEM), if any.
    """

    scheme: str
    token: str
    method: str
    url: str
    dpop_proofs: tuple[str, ...] = ()
    client_certificate: bytes | str | None = None


class SenderConstraints:
    """Enforces the token's sender constraint, after the token itself is validated.

    A DPoP-bound token (``cnf.jkt``) must come with the ``DPoP`` scheme and a valid proof; a
    DPoP-bound token presented as a plain Bearer token is refused (no downgrade). A
    certificate-bound token (``cnf.x5t#S256``) must come over a connection with that client
    certificate.

    Args:
        dpop: The proof verifier; None refuses every DPoP-bound token.
        require_dpop: Refuse tokens that are not DPoP-bound (e.g. for a high-value route).
        require_certificate: Refuse tokens that are not certificate-bound.
    """

    def __init__(
        self,
        *,
        dpop: DPoPVerifier | None = None,
        require_dpop: bool = False,
        require_certificate: bool = False,
    ) -> None:
        if require_dpop and dpop is None:
            raise ConfigurationError("require_dpop needs a DPoPVerifier")
        self.dpop = dpop
        self.require_dpop = require_dpop
        self.require_certificate = require_certificate

    @property
    def challenge_scheme(self) -> str:
        """The scheme to challenge with: ``DPoP`` when DPoP is required, else ``Bearer``."""
        return "DPoP" if self.require_dpop else "Bearer"

    @property
    def challenge_params(self) -> tuple[tuple[str, str], ...]:
        """``algs`` for a DPoP challenge (RFC 9449 section 7.1)."""
        if self.dpop is None or not self.require_dpop:
            return ()
        return (("algs", " ".join(self.dpop.algorithms)),)

    def check(
        self, claims: Claims | Mapping[str, Any], request: PresentedRequest
    ) -> DPoPProof | None:
        """Raise a ``TokenError`` unless the request proves the token's sender constraint."""
        proof: DPoPProof | None = None
        bound_key = confirmation_thumbprint(claims)
        scheme = request.scheme.lower()
        if bound_key is not None or scheme == "dpop" or self.require_dpop:
            if scheme != "dpop":
                raise InvalidDPoPProof(
                    "This access token must be presented with the DPoP scheme",
                    reason="dpop_required",
                )
            if bound_key is None:
                raise InvalidDPoPProof(
                    "The access token is not bound to a DPoP key", reason="dpop_not_bound"
                )
            if self.dpop is None:
                raise InvalidDPoPProof(
                    "DPoP-bound tokens are not accepted here", reason="dpop_not_supported"
                )
            if len(request.dpop_proofs) != 1:
                raise InvalidDPoPProof(
                    "Exactly one DPoP proof is required",
                    reason="dpop_proof_missing"
                    if not request.dpop_proofs
                    else "dpop_proof_malformed",
                )
            proof = self.dpop.verify(
                request.dpop_proofs[0],
                method=request.method,
                url=request.url,
                access_token=request.token,
                claims=claims,
            )
        check_certificate_binding(
            claims, request.client_certificate, required=self.require_certificate
        )
        return proof
