"""Test kit: generate keys, mint tokens (valid or deliberately broken), run a local issuer.

Use it to test your own protected application::

    from jwkguard.testing import LocalIssuer

    with LocalIssuer() as issuer:
        validator = Validator(issuers=[issuer.issuer_config()], algorithms=["RS256"])
        token = issuer.mint(scopes=["orders:read"])
"""

from __future__ import annotations

from ._fake import fake_pipeline, make_claims
from ._introspection import IntrospectionEndpoint
from ._issuer import LocalIssuer
from ._keys import SigningKey, b64url, generate_key, mint_token, sign_compact
from ._sender import CertificateAuthority, IssuedCertificate, make_dpop_proof

__all__ = [
    "CertificateAuthority",
    "IntrospectionEndpoint",
    "IssuedCertificate",
    "LocalIssuer",
    "SigningKey",
    "b64url",
    "fake_pipeline",
    "generate_key",
    "make_claims",
    "make_dpop_proof",
    "mint_token",
    "sign_compact",
]
