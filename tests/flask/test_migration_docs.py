"""docs/migrating.md, flask-jwt-extended section: the after code runs as written."""

from __future__ import annotations

from typing import Any

from jwkguard.testing import LocalIssuer

from ..core.test_migration_docs import blocks, run


def test_flask_jwt_extended_after_block(local_issuer: LocalIssuer) -> None:
    (source,) = blocks("## From flask-jwt-extended")
    namespace = run(source, local_issuer)
    app = namespace["app"]
    try:
        check(app.test_client(), local_issuer)
    finally:
        app.extensions["jwkguard"].validator.close()


def check(client: Any, local_issuer: LocalIssuer) -> None:
    auth = {"Authorization": f"Bearer {local_issuer.mint(subject='ada', scopes=['a'])}"}
    assert client.get("/me", headers=auth).json == {"sub": "ada", "scopes": ["a"]}
    assert client.get("/me").status_code == 401
    refused = client.get("/orders", headers=auth)
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    no_aud = local_issuer.mint(audience=None)
    assert client.get("/me", headers={"Authorization": f"Bearer {no_aud}"}).status_code == 401
