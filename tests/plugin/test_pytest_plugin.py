"""The jwkguard pytest plugin, run by pytester as a user's test suite would run it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ._inner import STRICT_WARNINGS

pytestmark = pytest.mark.filterwarnings("error")

# pytester is enabled here: pytest_plugins in a conftest is allowed only at the rootdir.
pytest_plugins = ["pytester"]


def _run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_user=source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *STRICT_WARNINGS, *args)


def test_the_plugin_is_registered_by_the_pytest11_entry_point() -> None:
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="pytest11") if e.name == "jwkguard"]
    assert entry.value == "jwkguard_pytest"


def test_pytest_start_up_imports_neither_jwkguard_nor_a_framework(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    code = (
        "import sys, json, pytest\n"
        "pytest.main(['-q', '-p', 'no:cacheprovider', '--co'])\n"
        "names = ('jwkguard', 'cryptography', 'fastapi', 'django', 'flask', 'starlette')\n"
        "print(json.dumps([n for n in names if n in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "jwkguard_pytest" not in done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_fixtures_are_listed_with_their_docs(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    listed = result.stdout.str()
    for name in (
        "jwkguard_issuer",
        "jwkguard_settings",
        "jwkguard_validator",
        "jwkguard_token",
        "jwkguard_claims",
        "jwkguard_fastapi",
        "jwkguard_django",
        "jwkguard_flask",
    ):
        assert f"{name} -- " in listed


def test_tokens_of_every_kind_meet_the_validator(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
import pytest
from jwkguard import TokenError
from jwkguard.sender import DPoPVerifier, PresentedRequest, SenderConstraints


def test_valid(jwkguard_validator, jwkguard_token):
    claims = jwkguard_validator.validate(jwkguard_token(subject="alice", scopes=["a", "b"]))
    assert claims.subject == "alice"
    assert claims.scopes == {"a", "b"}


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("expired", "expired"),
        ("not_yet_valid", "not_yet_valid"),
        ("wrong_audience", "audience_mismatch"),
        ("wrong_issuer", "issuer_mismatch"),
        ("bad_signature", "bad_signature"),
    ],
)
def test_refused(jwkguard_validator, jwkguard_token, kind, reason):
    with pytest.raises(TokenError) as caught:
        jwkguard_validator.validate(getattr(jwkguard_token, kind)())
    assert caught.value.reason == reason


def test_without_scopes(jwkguard_validator, jwkguard_token):
    assert jwkguard_validator.validate(jwkguard_token.without_scopes(scopes=["x"])).scopes == set()


def test_dpop_bound(jwkguard_validator, jwkguard_token):
    bound = jwkguard_token.dpop("GET", "https://api.example.com/orders")
    claims = jwkguard_validator.validate(bound.token)
    assert claims["cnf"] == {"jkt": bound.key.thumbprint}
    sender = SenderConstraints(dpop=DPoPVerifier())
    presented = PresentedRequest(
        scheme="DPoP", token=bound.token, method="GET",
        url="https://api.example.com/orders", dpop_proofs=(bound.proof,),
    )
    sender.check(claims, presented)
    assert bound.headers["Authorization"] == f"DPoP {bound.token}"


def test_settings_shape(jwkguard_settings, jwkguard_issuer):
    assert jwkguard_settings["ALGORITHMS"] == ["RS256"]
    assert jwkguard_settings["ISSUERS"][0]["issuer"] == jwkguard_issuer.url


def test_fake_claims_need_no_key(jwkguard_claims):
    claims = jwkguard_claims(subject="bob", scopes=["orders:read"], tenant="t1")
    assert (claims.subject, claims.scopes, claims["tenant"]) == ("bob", {"orders:read"}, "t1")
""",
    )
    result.assert_outcomes(passed=10)


def test_audience_and_algorithm_come_from_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\njwkguard_audience = https://orders.example\njwkguard_algorithm = ES256\n"
    )
    result = _run(
        pytester,
        """
def test_ini(jwkguard_validator, jwkguard_token):
    claims = jwkguard_validator.validate(jwkguard_token())
    assert claims["aud"] == "https://orders.example"
    assert claims.header["alg"] == "ES256"
""",
    )
    result.assert_outcomes(passed=1)


def test_a_project_fixture_of_the_same_name_wins(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "import pytest\n\n@pytest.fixture\ndef jwkguard_token():\n    return 'mine'\n"
    )
    result = _run(pytester, "def test_mine(jwkguard_token):\n    assert jwkguard_token == 'mine'\n")
    result.assert_outcomes(passed=1)


def test_no_jwkguard_turns_the_plugin_off(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "def test_x(jwkguard_token):\n    pass\n", "-p", "no:jwkguard")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'jwkguard_token' not found*"])
