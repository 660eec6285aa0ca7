"""Shared by the sender-constraint tests of the core and of every adapter.

Each adapter runs the same broken-proof cases and expects the same answer, so the RFC 6750 /
RFC 9449 contract is checked to be identical everywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from jwkguard.testing import SigningKey, generate_key, make_dpop_proof

ALGS = "ES256 RS256 PS256 EdDSA"
"""The ``algs`` of a default ``DPoPVerifier``'s challenges."""


@dataclass(frozen=True)
class BrokenProof:
    """A proof that is wrong in one way, and the refusal every adapter must give."""

    name: str
    method: str | None = None
    url: str | None = None
    iat_offset: float = 0
    access_token: str | None = None
    omit: tuple[str, ...] = ()
    header: dict[str, Any] = field(default_factory=dict)
    thief: bool = False
    reason: str = "dpop_proof_invalid"

    def make(self, key: SigningKey, *, method: str, url: str, token: str) -> str:
        """The broken proof for a request ``method url`` carrying ``token``."""
        return make_dpop_proof(
            generate_key("ES256") if self.thief else key,
            method=self.method or method,
            url=self.url or url,
            access_token=self.access_token or token,
            iat=time.time() + self.iat_offset,
            omit=self.omit,
            header=self.header or None,
        )


BROKEN_PROOFS = [
    BrokenProof("wrong-htm", method="DELETE"),
    BrokenProof("wrong-htu-path", url="http://127.0.0.1/elsewhere"),
    BrokenProof("wrong-htu-host", url="https://evil.example.com/orders"),
    BrokenProof("stale-iat", iat_offset=-600),
    BrokenProof("future-iat", iat_offset=600),
    BrokenProof("missing-ath", omit=("ath",)),
    BrokenProof("wrong-ath", access_token="another-access-token"),
    BrokenProof("wrong-typ", header={"typ": "JWT"}),
    BrokenProof("key-mismatch", thief=True, reason="dpop_key_mismatch"),
]
"""One rule broken per case."""


def dpop_headers(token: str, proof: str | None) -> dict[str, str]:
    """``Authorization: DPoP <token>`` and, if given, the ``DPoP`` proof header."""
    headers = {"Authorization": f"DPoP {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return headers


def dpop_challenge(error: str | None = None, realm: str = "api") -> str:
    """The start of the ``WWW-Authenticate`` value of a DPoP challenge (RFC 9449 §7.1)."""
    if error is None:
        return f'DPoP realm="{realm}", algs="{ALGS}"'
    return f'DPoP realm="{realm}", error="{error}"'


def assert_dpop_refusal(
    status: int, headers: Any, body: Any, reason: str, *, error: str = "invalid_dpop_proof"
) -> None:
    """The RFC 9449 refusal: 401, a DPoP challenge naming the error and algs, the JSON body."""
    assert status == 401, body
    challenge = headers["WWW-Authenticate"]
    assert challenge.startswith(dpop_challenge(error)), challenge
    assert challenge.endswith(f'algs="{ALGS}"'), challenge
    assert body["error"] == error
    assert body["reason"] == reason
    assert body["error_description"]
