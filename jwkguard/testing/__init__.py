"""Test kit: generate keys, mint tokens (valid or deliberately broken), run a local issuer.

Use it to test your own protected application::

    from jwkguard.testing import LocalIssuer

    with LocalIssuer() as issuer:
        validator = Validator(issuers=[issuer.issuer_config()], algorithms=["RS256"])
        token = issuer.mint(scopes=["orders:read"])
"""

from __future__ import annotations

from ._issuer import LocalIssuer
from ._keys import SigningKey, b64url, generate_key, mint_token, sign_compact

__all__ = ["LocalIssuer", "SigningKey", "b64url", "generate_key", "mint_token", "sign_compact"]
