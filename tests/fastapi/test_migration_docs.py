"""docs/migrating.md, fastapi-azure-auth section: the after code runs as written and trusts
exactly the Entra tenant's issuers and audiences."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from ..core.test_migration_docs import blocks

TENANT = "00000000-0000-0000-0000-0000000000aa"
CLIENT = "00000000-0000-0000-0000-00000000c11e"


def test_fastapi_azure_auth_after_block() -> None:
    (source,) = blocks("## From fastapi-azure-auth")
    namespace: dict[str, Any] = {"__name__": "snippet"}
    exec(compile(source, "snippet", "exec"), namespace)  # noqa: S102
    validator = namespace["validator"]
    issuers = {issuer.issuer: issuer.audiences for issuer in validator.issuers}
    audiences = (CLIENT, f"api://{CLIENT}")
    assert issuers == {
        f"https://login.microsoftonline.com/{TENANT}/v2.0": audiences,
        f"https://sts.windows.net/{TENANT}/": audiences,
    }
    app = namespace["app"]
    client = TestClient(app)  # no lifespan: no key fetch leaves the machine
    answer = client.get("/me")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes["JWTBearer"]["scheme"] == "bearer"
