"""The plugin's framework fixtures, in a user's FastAPI, Django and Flask test suites."""

from __future__ import annotations

import itertools
import textwrap
from types import ModuleType

import pytest

from ._inner import STRICT_WARNINGS

pytestmark = pytest.mark.filterwarnings("error")

# pytester is enabled here: pytest_plugins in a conftest is allowed only at the rootdir.
pytest_plugins = ["pytester"]


def _run(pytester: pytest.Pytester, **files: str) -> pytest.RunResult:
    pytester.makepyfile(**files)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *STRICT_WARNINGS)


FASTAPI_APP = """
from fastapi import FastAPI, Security
from jwkguard import Claims, Issuer, Validator
from jwkguard_fastapi import CurrentClaims, JWTBearer, install

production = Validator(
    issuers=[Issuer("https://login.example.com/", audiences=["https://api.example.com"])],
    algorithms=["RS256"],
)
auth = JWTBearer(production)
app = FastAPI()
install(app, production)


@app.get("/orders")
async def orders(claims: Claims = Security(auth, scopes=["orders:read"])):
    return {"sub": claims.subject}


@app.get("/me")
async def me(claims: CurrentClaims):
    return {"sub": claims.subject}
"""

FASTAPI_TESTS = """
from fastapi.testclient import TestClient
from myapp import app, auth, production


def test_real_tokens(jwkguard_fastapi, jwkguard_token):
    jwkguard_fastapi.use(app, auth)
    client = TestClient(app)
    alice = jwkguard_token.headers(subject="alice", scopes=["orders:read"])
    ok = client.get("/orders", headers=alice)
    assert ok.status_code == 200 and ok.json() == {"sub": "alice"}
    assert client.get("/me", headers=jwkguard_token.headers()).status_code == 200
    expired = client.get("/orders", headers=jwkguard_token.headers(jwkguard_token.expired()))
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    other = client.get("/orders", headers=jwkguard_token.headers(jwkguard_token.wrong_audience()))
    assert other.status_code == 401
    assert client.get("/orders", headers=jwkguard_token.headers()).status_code == 403
    assert client.get("/orders").status_code == 401


def test_restored_after_the_test():
    assert auth.validator is production


def test_fake_claims(jwkguard_fastapi):
    jwkguard_fastapi.fake(app, auth, subject="bob", scopes=["orders:read"])
    client = TestClient(app)
    assert client.get("/orders").json() == {"sub": "bob"}


def test_fake_claims_still_check_scopes(jwkguard_fastapi):
    jwkguard_fastapi.fake(app, auth, subject="bob")
    refused = TestClient(app).get("/orders")
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]


def test_fake_current_claims_by_default(jwkguard_fastapi, jwkguard_claims):
    jwkguard_fastapi.fake(app, claims=jwkguard_claims(subject="carol"))
    assert TestClient(app).get("/me").json() == {"sub": "carol"}


def test_overrides_restored():
    assert app.dependency_overrides == {}
"""


def test_fastapi(pytester: pytest.Pytester) -> None:
    result = _run(pytester, myapp=FASTAPI_APP, test_api=FASTAPI_TESTS)
    result.assert_outcomes(passed=6)


def docstring_example(module: ModuleType) -> str:
    """The ``::`` code block of a shipped module's docstring: the example its users read."""
    after = (module.__doc__ or "").split("::\n", 1)[1].splitlines()
    block = itertools.takewhile(lambda line: not line or line.startswith("    "), after)
    return textwrap.dedent("\n".join(block))


FLASK_TESTS = """
from myapp import app, guard


def test_real_tokens(jwkguard_flask, jwkguard_token):
    validator = jwkguard_flask.use(app)
    client = app.test_client()
    alice = jwkguard_token.headers(subject="alice", scopes=["orders:read"])
    ok = client.get("/orders", headers=alice)
    assert ok.status_code == 200 and ok.json == {"sub": "alice"}
    expired = jwkguard_token.headers(jwkguard_token.expired())
    assert client.get("/orders", headers=expired).status_code == 401
    assert client.get("/orders", headers=jwkguard_token.headers()).status_code == 403
    with app.app_context():
        assert guard.validator is validator


def test_restored_after_the_test(jwkguard_token):
    client = app.test_client()
    # The production issuer is not the local one, so the local token is refused again.
    local = jwkguard_token.headers(scopes=["orders:read"])
    assert client.get("/orders", headers=local).status_code == 401


def test_fake_claims(jwkguard_flask):
    jwkguard_flask.fake(app, subject="bob", scopes=["orders:read"])
    assert app.test_client().get("/orders").json == {"sub": "bob"}


def test_fake_claims_still_check_scopes(jwkguard_flask):
    jwkguard_flask.fake(app, subject="bob")
    assert app.test_client().get("/orders").status_code == 403
"""


def test_flask(pytester: pytest.Pytester) -> None:
    import jwkguard_flask

    # The user's app is the quick start of jwkguard_flask's docstring, as written.
    flask_app = docstring_example(jwkguard_flask)
    result = _run(pytester, myapp=flask_app, test_api=FLASK_TESTS)
    result.assert_outcomes(passed=4)


DJANGO_CONFTEST = """
import django
from django.conf import settings

settings.configure(
    SECRET_KEY="tests-only-secret-key-that-is-long-enough-for-django",
    ALLOWED_HOSTS=["testserver"],
    ROOT_URLCONF="myurls",
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "jwkguard_django"],
    MIDDLEWARE=["jwkguard_django.middleware.JWKGuardMiddleware"],
    DATABASES={},
    JWKGUARD={
        "ISSUERS": [{"ISSUER": "https://login.example.com/",
                     "AUDIENCES": ["https://api.example.com"]}],
        "ALGORITHMS": ["RS256"],
        "EXEMPT_PATHS": ["/health"],
    },
)
django.setup()
"""

DJANGO_URLS = """
from django.http import JsonResponse
from django.urls import path
from jwkguard_django.decorators import token_required


@token_required(scopes=["orders:read"])
def orders(request):
    return JsonResponse({"sub": request.auth.subject})


def health(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("orders", orders), path("health", health)]
"""

DJANGO_TESTS = """
from django.test import Client


def test_real_tokens(jwkguard_django, jwkguard_token):
    settings = jwkguard_django.use()
    assert settings["EXEMPT_PATHS"] == ["/health"]
    client = Client()
    alice = jwkguard_token.headers(subject="alice", scopes=["orders:read"])
    ok = client.get("/orders", headers=alice)
    assert ok.status_code == 200 and ok.json() == {"sub": "alice"}
    expired = jwkguard_token.headers(jwkguard_token.expired())
    assert client.get("/orders", headers=expired).status_code == 401
    assert client.get("/orders", headers=jwkguard_token.headers()).status_code == 403
    assert client.get("/health").status_code == 200


def test_fake_claims(jwkguard_django):
    jwkguard_django.fake(subject="bob", scopes=["orders:read"])
    assert Client().get("/orders").json() == {"sub": "bob"}


def test_fake_claims_still_check_scopes(jwkguard_django):
    jwkguard_django.fake(subject="bob")
    assert Client().get("/orders").status_code == 403


def test_restored_after_the_test():
    assert Client().get("/orders").status_code == 401
"""


def test_django(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        conftest=DJANGO_CONFTEST,
        myurls=DJANGO_URLS,
        test_api=DJANGO_TESTS,
    )
    result.assert_outcomes(passed=4)
