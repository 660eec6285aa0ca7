"""The jwkguard pytest plugin: a local issuer, tokens and fake claims for testing your API.

Installed with jwkguard (the ``pytest11`` entry point ``jwkguard``); disable it with
``-p no:jwkguard``. This module imports only pytest: jwkguard, its cryptography and the web
frameworks are imported by the fixtures that need them, so test collection stays fast.

Fixtures:
    jwkguard_issuer: A running :class:`jwkguard.testing.LocalIssuer` (discovery and JWKS on
        127.0.0.1), one per test, signing with a key made once per session.
    jwkguard_settings: Settings for that issuer, in the shape of every settings dict:
        ``{"ISSUERS": [...], "ALGORITHMS": [...]}``.
    jwkguard_validator: A :class:`jwkguard.Validator` trusting that issuer.
    jwkguard_token: Mints tokens for that issuer: valid, expired, for another audience or
        issuer, with a bad signature, without scopes, DPoP-bound.
    jwkguard_claims: :func:`jwkguard.testing.make_claims`, to fake claims without keys.
    jwkguard_fastapi, jwkguard_django, jwkguard_flask: Point an app at the local issuer, or
        fake its claims, for the duration of one test.

Options (``pytest.ini`` / ``[tool.pytest.ini_options]``):
    jwkguard_audience: The ``aud`` of minted tokens (default ``https://api.example.com``).
    jwkguard_algorithm: The signing algorithm (default ``RS256``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from jwkguard import Claims, Validator
    from jwkguard.testing import LocalIssuer, SigningKey

__all__ = [
    "DPoPRequest",
    "DjangoKit",
    "FastAPIKit",
    "FlaskKit",
    "TokenMinter",
]

_DEFAULT_AUDIENCE = "https://api.example.com"
_DEFAULT_ALGORITHM = "RS256"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "jwkguard_audience", "jwkguard: the aud of tokens minted by jwkguard_token", "string"
    )
    parser.addini("jwkguard_algorithm", "jwkguard: the local issuer's signing algorithm", "string")


def _ini(config: pytest.Config, name: str, default: str) -> str:
    value = config.getini(name)
    return str(value) if value else default


# -- the issuer and its tokens ---------------------------------------------------------------


@pytest.fixture(scope="session")
def _jwkguard_signing_key(pytestconfig: pytest.Config) -> SigningKey:
    """One key per session: an RSA key takes tens of milliseconds to make."""
    from jwkguard.testing import generate_key

    return generate_key(_ini(pytestconfig, "jwkguard_algorithm", _DEFAULT_ALGORITHM))


@pytest.fixture
def jwkguard_issuer(
    pytestconfig: pytest.Config, _jwkguard_signing_key: SigningKey
) -> Iterator[LocalIssuer]:
    """A local issuer serving discovery and its JWK Set on 127.0.0.1 for this test."""
    from jwkguard.testing import LocalIssuer

    issuer = LocalIssuer(
        alg=_jwkguard_signing_key.alg,
        audience=_ini(pytestconfig, "jwkguard_audience", _DEFAULT_AUDIENCE),
        key=_jwkguard_signing_key,
    )
    with issuer:
        yield issuer


@pytest.fixture
def jwkguard_settings(jwkguard_issuer: LocalIssuer) -> dict[str, Any]:
    """``{"ISSUERS": [...], "ALGORITHMS": [...]}`` for the local issuer."""
    return {
        "ISSUERS": [
            {
                "issuer": jwkguard_issuer.url,
                "audiences": [jwkguard_issuer.audience],
                "jwks_uri": jwkguard_issuer.jwks_uri,
            }
        ],
        "ALGORITHMS": [jwkguard_issuer.alg],
    }


@pytest.fixture
def jwkguard_validator(jwkguard_settings: dict[str, Any]) -> Iterator[Validator]:
    """A validator that trusts the local issuer."""
    from jwkguard import build_validator

    validator = build_validator(jwkguard_settings)
    yield validator
    validator.close()


@dataclass(frozen=True)
class DPoPRequest:
    """A DPoP-bound token with its proof: send ``headers`` with the request."""

    token: str
    proof: str
    key: SigningKey

    @property
    def headers(self) -> dict[str, str]:
        """``Authorization: DPoP <token>`` and ``DPoP: <proof>``."""
        return {"Authorization": f"DPoP {self.token}", "DPoP": self.proof}


@dataclass
class TokenMinter:
    """Tokens from the local issuer; call it for a valid one.

    Every method takes the claims of :func:`jwkguard.testing.mint_token` (``subject``,
    ``scopes``, ``lifetime``, ``omit`` and any other claim as a keyword).
    """

    issuer: LocalIssuer
    _dpop_key: SigningKey | None = field(default=None, repr=False)

    def __call__(self, **claims: Any) -> str:
        """A valid token."""
        return self.issuer.mint(**claims)

    def headers(self, token: str | None = None, **claims: Any) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` for ``token`` or a new valid one."""
        return {"Authorization": f"Bearer {token if token is not None else self(**claims)}"}

    def expired(self, **claims: Any) -> str:
        """A token that expired ten minutes ago."""
        claims.setdefault("now", time.time() - 900)
        claims.setdefault("lifetime", 300)
        return self(**claims)

    def not_yet_valid(self, **claims: Any) -> str:
        """A token whose ``nbf`` is an hour ahead."""
        return self(nbf=int(time.time()) + 3600, **claims)

    def wrong_audience(self, audience: str = "https://other-api.example.com", **claims: Any) -> str:
        """A token for another API."""
        return self(audience=audience, **claims)

    def wrong_issuer(self, issuer: str = "https://other-issuer.example.com/", **claims: Any) -> str:
        """A token claiming another issuer (signed with this issuer's key)."""
        return self(issuer=issuer, **claims)

    def bad_signature(self, **claims: Any) -> str:
        """A valid-looking token whose signature does not verify."""
        head, payload, signature = self(**claims).split(".")
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        return f"{head}.{payload}.{flipped}"

    def without_scopes(self, **claims: Any) -> str:
        """A valid token granting no scope (for 403 ``insufficient_scope``)."""
        claims.pop("scopes", None)
        return self(**claims)

    def dpop(self, method: str, url: str, **claims: Any) -> DPoPRequest:
        """A DPoP-bound token (RFC 9449 ``cnf.jkt``) and a proof for ``method`` ``url``."""
        from jwkguard.testing import generate_key, make_dpop_proof

        if self._dpop_key is None:
            self._dpop_key = generate_key("ES256")
        key = self._dpop_key
        token = self(cnf={"jkt": key.thumbprint}, **claims)
        proof = make_dpop_proof(key, method=method, url=url, access_token=token)
        return DPoPRequest(token=token, proof=proof, key=key)


@pytest.fixture
def jwkguard_token(jwkguard_issuer: LocalIssuer) -> TokenMinter:
    """Mints tokens for the local issuer: ``jwkguard_token(scopes=["orders:read"])``."""
    return TokenMinter(jwkguard_issuer)


@pytest.fixture
def jwkguard_claims() -> Any:
    """:func:`jwkguard.testing.make_claims`: ``jwkguard_claims(subject="alice", scopes=[...])``."""
    from jwkguard.testing import make_claims

    return make_claims


# -- the frameworks --------------------------------------------------------------------------


def _claims_of(claims: Claims | None, options: Mapping[str, Any]) -> Claims:
    from jwkguard.testing import make_claims

    if claims is not None:
        if options:
            raise TypeError("give ready claims or make_claims options, not both")
        return claims
    return make_claims(**options)


class _Kit:
    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self._stack = ExitStack()

    def close(self) -> None:
        self._stack.close()


class FastAPIKit(_Kit):
    """``jwkguard_fastapi``: point an app at the local issuer, or fake its claims."""

    def use(self, app: Any, *dependencies: Any) -> Validator:
        """Validate ``app``'s tokens (its ``install`` validator and each ``JWTBearer`` in
        ``dependencies``) against the local issuer for this test."""
        from jwkguard_fastapi.testing import use_validator

        validator: Validator = self._request.getfixturevalue("jwkguard_validator")
        self._stack.enter_context(use_validator(app, validator, *dependencies))
        return validator

    def fake(
        self, app: Any, *dependencies: Any, claims: Claims | None = None, **options: Any
    ) -> Claims:
        """Override ``dependencies`` (default: the ``CurrentClaims`` one) with fake claims."""
        from jwkguard_fastapi import bearer
        from jwkguard_fastapi.testing import claims_override

        fake = _claims_of(claims, options)
        overrides = app.dependency_overrides
        targets = dependencies or (bearer,)
        before = {target: overrides.get(target) for target in targets}
        for target in targets:
            overrides[target] = claims_override(fake)

        def restore() -> None:
            for target, previous in before.items():
                if previous is None:
                    overrides.pop(target, None)
                else:
                    overrides[target] = previous

        self._stack.callback(restore)
        return fake


class DjangoKit(_Kit):
    """``jwkguard_django``: point ``settings.JWKGUARD`` at the local issuer, or fake claims."""

    def use(self) -> dict[str, Any]:
        """``JWKGUARD`` for this test: the project's options, the local issuer's keys."""
        from jwkguard_django.testing import issuer_settings, use_issuer

        local: dict[str, Any] = self._request.getfixturevalue("jwkguard_settings")
        self._stack.enter_context(use_issuer(local))
        return issuer_settings(local)

    def fake(self, claims: Claims | None = None, **options: Any) -> Claims:
        """Every request of this test has these claims (scopes still checked)."""
        from jwkguard_django.testing import fake_claims

        fake = _claims_of(claims, options)
        self._stack.enter_context(fake_claims(fake))
        return fake


class FlaskKit(_Kit):
    """``jwkguard_flask``: point an app at the local issuer, or fake its claims."""

    def use(self, app: Any) -> Validator:
        """Validate ``app``'s tokens against the local issuer for this test."""
        from jwkguard_flask.testing import use_validator

        validator: Validator = self._request.getfixturevalue("jwkguard_validator")
        self._stack.enter_context(use_validator(app, validator))
        return validator

    def fake(self, app: Any, claims: Claims | None = None, **options: Any) -> Claims:
        """Every request to ``app`` in this test has these claims (scopes still checked)."""
        from jwkguard_flask.testing import fake_claims

        fake = _claims_of(claims, options)
        self._stack.enter_context(fake_claims(app, fake))
        return fake


@pytest.fixture
def jwkguard_fastapi(request: pytest.FixtureRequest) -> Iterator[FastAPIKit]:
    """``jwkguard_fastapi.use(app, auth)`` or ``jwkguard_fastapi.fake(app, auth, scopes=[...])``."""
    kit = FastAPIKit(request)
    yield kit
    kit.close()


@pytest.fixture
def jwkguard_django(request: pytest.FixtureRequest) -> Iterator[DjangoKit]:
    """``jwkguard_django.use()`` or ``jwkguard_django.fake(scopes=[...])``."""
    kit = DjangoKit(request)
    yield kit
    kit.close()


@pytest.fixture
def jwkguard_flask(request: pytest.FixtureRequest) -> Iterator[FlaskKit]:
    """``jwkguard_flask.use(app)`` or ``jwkguard_flask.fake(app, scopes=[...])``."""
    kit = FlaskKit(request)
    yield kit
    kit.close()
