"""Sender constraints: where the request pipeline enforces DPoP and certificate binding.

``check`` and ``acheck`` share one decision core (``_screen``), which makes every check that
needs no IO; the drivers differ only in how they ask the DPoP replay ledger. ``refusal``
builds the RFC 6750 / RFC 9449 answer, so every adapter challenges alike.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict
from urllib.parse import unquote

from .._claims_result import Claims
from ..errors import (
    ConfigurationError,
    InvalidClaim,
    InvalidDPoPProof,
    TokenError,
    UseDPoPNonce,
)
from ..pipeline._bearer import ErrorResponse, error_response, missing_token_response
from ._dpop import DPoPProof, DPoPVerifier, _Pending, confirmation_thumbprint
from ._mtls import certificate_binding, check_certificate_binding

__all__ = ["PresentedRequest", "SenderConstraints", "SenderOptions"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class PresentedRequest:
    """What an adapter knows of the request that carried the token.

    Attributes:
        scheme: The Authorization scheme the token came with (``Bearer`` or ``DPoP``).
        token: The access token.
        method: The HTTP method.
        url: The full request URL as the client addressed it.
        dpop_proofs: Every ``DPoP`` header value (RFC 9449 allows exactly one).
        client_certificate: The TLS client certificate (DER or PEM), if any; see
            :meth:`SenderConstraints.client_certificate`.
    """

    scheme: str
    token: str
    method: str
    url: str
    dpop_proofs: tuple[str, ...] = ()
    client_certificate: bytes | str | None = None


class SenderOptions(TypedDict, total=False):
    """The keyword options of :class:`SenderConstraints`, for adapters that take them flat
    and build the constraints themselves (FastAPI's ``JWTBearer``).

    Each means what the :class:`SenderConstraints` argument of the same name means.
    """

    dpop: DPoPVerifier | None
    require_dpop: bool
    require_dpop_issuers: Collection[str]
    require_certificate: bool
    client_cert_header: str | None
    trusted_proxies: Collection[str]


class SenderConstraints:
    """Enforces the token's sender constraint, after the token itself is validated.

    A DPoP-bound token (``cnf.jkt``) must come with the ``DPoP`` scheme and a valid proof; a
    DPoP-bound token presented as a plain Bearer token is refused (no downgrade), and so is
    the ``DPoP`` scheme with an unbound token. A certificate-bound token (``cnf.x5t#S256``)
    must come over a connection with that client certificate (RFC 8705 section 3).

    Args:
        dpop: The proof verifier; None refuses every DPoP-bound token.
        require_dpop: Refuse tokens that are not DPoP-bound (e.g. for a high-value route).
        require_dpop_issuers: Refuse tokens from these issuers unless they are DPoP-bound.
        require_certificate: Refuse tokens that are not certificate-bound.
        client_cert_header: The header in which a TLS-terminating proxy forwards the client
            certificate (URL-encoded PEM, as nginx's ``$ssl_client_escaped_cert``).
        trusted_proxies: Addresses or networks of those proxies; the header is ignored on
            connections from anywhere else, so a client cannot claim a certificate.
    """

    __slots__ = (
        "_derived",
        "_networks",
        "client_cert_header",
        "dpop",
        "require_certificate",
        "require_dpop",
        "require_dpop_issuers",
        "trusted_proxies",
    )

    def __init__(
        self,
        *,
        dpop: DPoPVerifier | None = None,
        require_dpop: bool = False,
        require_dpop_issuers: Collection[str] = (),
        require_certificate: bool = False,
        client_cert_header: str | None = None,
        trusted_proxies: Collection[str] = (),
    ) -> None:
        if isinstance(require_dpop_issuers, str) or isinstance(trusted_proxies, str):
            raise ConfigurationError("require_dpop_issuers and trusted_proxies must be lists")
        if (require_dpop or require_dpop_issuers) and dpop is None:
            raise ConfigurationError("requiring DPoP needs a DPoPVerifier")
        if client_cert_header is not None and (
            not isinstance(client_cert_header, str) or not client_cert_header.strip()
        ):
            raise ConfigurationError("client_cert_header must be a header name")
        if client_cert_header is not None and not trusted_proxies:
            raise ConfigurationError(
                "client_cert_header needs trusted_proxies: the header is only believed from them"
            )
        networks: list[_Network] = []
        for entry in trusted_proxies:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except (TypeError, ValueError):
                raise ConfigurationError(
                    f"trusted_proxies: {entry!r} is not an address or network"
                ) from None
        self.dpop = dpop
        self.require_dpop = require_dpop
        self.require_dpop_issuers = frozenset(require_dpop_issuers)
        self.require_certificate = require_certificate
        self.client_cert_header = client_cert_header.strip() if client_cert_header else None
        self.trusted_proxies = tuple(trusted_proxies)
        self._networks = tuple(networks)
        self._derived: dict[tuple[bool, bool], SenderConstraints] = {}

    def requiring(self, *, dpop: bool = False, certificate: bool = False) -> SenderConstraints:
        """A copy that also requires DPoP and/or certificate binding (for one route).

        The copy shares the verifier, so proofs spent on one route count on every route; it is
        built once per combination, so adapters may ask on every request.
        """
        key = (dpop, certificate)
        derived = self._derived.get(key)
        if derived is None:
            derived = self._derived[key] = SenderConstraints(
                dpop=self.dpop,
                require_dpop=self.require_dpop or dpop,
                require_dpop_issuers=self.require_dpop_issuers,
                require_certificate=self.require_certificate or certificate,
                client_cert_header=self.client_cert_header,
                trusted_proxies=self.trusted_proxies,
            )
        return derived

    @property
    def inactive(self) -> bool:
        """True when nothing can be required of a token that carries no ``cnf`` claim."""
        return not (self.require_dpop or self.require_dpop_issuers or self.require_certificate)

    # -- where the client certificate comes from ------------------------------------------

    def client_certificate(
        self,
        direct: bytes | str | None,
        forwarded: Sequence[str] = (),
        peer: str | None = None,
    ) -> bytes | str | None:
        """The client certificate of a request.

        Args:
            direct: The certificate of this server's own TLS connection, if it has one.
            forwarded: Every value of the ``client_cert_header`` header.
            peer: The address of the connection's peer.

        A forwarded certificate counts only from a trusted proxy, in exactly one header; it
        then wins over ``direct`` (which would be the proxy's own certificate).
        """
        if self.client_cert_header is None or peer is None or not self._trusted(peer):
            return direct
        if len(forwarded) != 1 or not forwarded[0].strip():
            return direct if not forwarded else None
        return unquote(forwarded[0].strip())

    def _trusted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    # -- the checks -----------------------------------------------------------------------

    def check(
        self, claims: Claims | Mapping[str, Any], request: PresentedRequest
    ) -> DPoPProof | None:
        """Raise a ``TokenError`` unless the request proves the token's sender constraint."""
        pending = self._screen(claims, request)
        if pending is None or self.dpop is None:
            return None
        return self.dpop._record(pending)

    async def acheck(
        self, claims: Claims | Mapping[str, Any], request: PresentedRequest
    ) -> DPoPProof | None:
        """:meth:`check` for async callers: a shared replay ledger is asked without blocking."""
        pending = self._screen(claims, request)
        if pending is None or self.dpop is None:
            return None
        return await self.dpop._arecord(pending)

    def check_required(self, claims: Claims | Mapping[str, Any]) -> None:
        """Refuse a token this object requires to be bound, when it is not.

        For a token whose binding :meth:`check` already verified in this request (a route
        that is stricter than the app): a bound token passed that check, so only an unbound
        one can still be refused here.
        """
        if self._dpop_required(claims) and confirmation_thumbprint(claims) is None:
            raise _dpop_required("This resource needs a DPoP-bound access token")
        if self.require_certificate and certificate_binding(claims) is None:
            raise _certificate_required()

    def _dpop_required(self, claims: Claims | Mapping[str, Any]) -> bool:
        return self.require_dpop or (
            bool(self.require_dpop_issuers) and claims.get("iss") in self.require_dpop_issuers
        )

    def _screen(
        self, claims: Claims | Mapping[str, Any], request: PresentedRequest
    ) -> _Pending | None:
        """Every check but the replay ledger; the examined proof, if there is one."""
        pending: _Pending | None = None
        bound_key = confirmation_thumbprint(claims)
        scheme = request.scheme.lower()
        if bound_key is not None or scheme == "dpop" or self._dpop_required(claims):
            if scheme != "dpop":
                raise _dpop_required(
                    "This access token must be presented with the DPoP scheme"
                    if bound_key is not None
                    else "This resource needs a DPoP-bound access token"
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
            pending = self.dpop._examine(
                request.dpop_proofs[0],
                method=request.method,
                url=request.url,
                access_token=request.token,
                claims=claims,
            )
        if self.require_certificate and certificate_binding(claims) is None:
            raise _certificate_required()
        check_certificate_binding(claims, request.client_certificate)
        return pending

    # -- the answer -----------------------------------------------------------------------

    def challenge(
        self, exc: TokenError | None = None, authorization: Sequence[str] = ()
    ) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The challenge scheme and its extra parameters for a refusal.

        ``DPoP`` (with ``algs``, RFC 9449 section 7.1) when DPoP is required, when the
        refusal is about the DPoP proof, or when the client used the DPoP scheme (read from
        ``authorization``, the request's ``Authorization`` values); else ``Bearer``
        (RFC 6750 section 3).
        """
        dpop = (
            self.require_dpop
            or isinstance(exc, InvalidDPoPProof | UseDPoPNonce)
            or (self.dpop is not None and _used_dpop(authorization))
        )
        if not dpop:
            return "Bearer", ()
        if self.dpop is None:
            return "DPoP", ()
        return "DPoP", (("algs", " ".join(self.dpop.algorithms)),)

    @property
    def challenge_scheme(self) -> str:
        """The scheme to challenge a request without a token with."""
        return self.challenge()[0]

    @property
    def challenge_params(self) -> tuple[tuple[str, str], ...]:
        """``algs`` for a DPoP challenge (RFC 9449 section 7.1) to a request without a token."""
        return self.challenge()[1]

    def refusal(
        self,
        exc: TokenError | None,
        *,
        realm: str = "api",
        required_scopes: Iterable[str] = (),
        authorization: Sequence[str] = (),
        challenge_params: Iterable[tuple[str, str]] = (),
    ) -> ErrorResponse:
        """The 400, 401, 403 or 503 answer; ``exc`` None means the request had no token.

        Args:
            exc: The refusal, or None for a request without a token.
            realm: The ``realm`` of the challenge.
            required_scopes: Scopes to name in an ``insufficient_scope`` challenge.
            authorization: The request's ``Authorization`` values, to answer a client that
                used the DPoP scheme with a DPoP challenge.
            challenge_params: More challenge parameters, last (RFC 9728 ``resource_metadata``).
        """
        scheme, params = self.challenge(exc, authorization)
        if challenge_params:
            params = (*params, *challenge_params)
        if exc is None:
            return missing_token_response(realm, scheme=scheme, challenge_params=params)
        return error_response(
            exc,
            realm=realm,
            required_scopes=required_scopes,
            scheme=scheme,
            challenge_params=params,
        )


def _dpop_required(description: str) -> InvalidDPoPProof:
    return InvalidDPoPProof(description, reason="dpop_required")


def _certificate_required() -> InvalidClaim:
    return InvalidClaim(
        "The access token must be bound to a client certificate",
        reason="certificate_binding_required",
        claim="cnf",
    )


def _used_dpop(authorization: Sequence[str]) -> bool:
    return len(authorization) == 1 and (
        authorization[0].strip().partition(" ")[0].lower() == "dpop"
    )
