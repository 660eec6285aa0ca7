"""Incident review: decode a token without trust, or explain a validation check by check.

``review_token`` asks the real validator for the verdict, then replays each stage with the
validator's own pieces (header routing, key source, verifier, compiled claims policy) so every
check's outcome is reported, not only the first failure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._claims_result import Claims, read_scopes
from .._parse import ParsedToken, parse_compact
from .._policy import ClaimsPolicy, check_scopes
from .._validator import Validator
from ..errors import (
    KeysUnavailable,
    LifecycleError,
    MalformedToken,
    TokenError,
)
from ..keys._set import VerificationKey
from ..lifecycle._audit import token_hash
from ._output import format_time, iso_time, relative

__all__ = ["Check", "Decoded", "Review", "decode_token", "review_token"]

TIME_CLAIMS = ("exp", "nbf", "iat", "auth_time")
_DANGEROUS_HEADERS = {
    "jku": "jku is ignored: keys never come from the token",
    "x5u": "x5u is ignored: keys never come from the token",
    "jwk": "an embedded jwk is ignored: keys never come from the token",
    "x5c": "x5c is ignored: keys never come from the token",
}


def numeric_date(value: Any) -> float | None:
    """``value`` as a float if it is a sane NumericDate (a number, not a bool)."""
    if type(value) in (int, float) and 0 <= value < 253402300800:
        return float(value)
    return None


@dataclass(frozen=True, slots=True)
class Decoded:
    """A token split and decoded, nothing verified."""

    header: dict[str, Any]
    payload: dict[str, Any]
    size: int
    fingerprint: str
    warnings: tuple[str, ...]

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None

    def times(self, now: float) -> dict[str, dict[str, Any]]:
        """Each time claim as epoch, UTC text and relative to ``now``."""
        result: dict[str, dict[str, Any]] = {}
        for name in TIME_CLAIMS:
            value = numeric_date(self.payload.get(name))
            if value is not None:
                result[name] = {
                    "epoch": self.payload[name],
                    "utc": iso_time(value),
                    "relative": relative(value, now),
                }
        return result

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "verified": False,
            "notice": "UNVERIFIED: decoded only; signature and claims were not checked",
            "header": self.header,
            "claims": self.payload,
            "kid": self.kid,
            "times": self.times(now),
            "token_hash": self.fingerprint,
            "size": self.size,
            "warnings": list(self.warnings),
        }


def decode_token(token: str, now: float) -> Decoded:
    """Split and decode ``token`` strictly (the validator's parser), without verifying it.

    Raises:
        MalformedToken: Not a compact JWS (an encrypted JWE is named as such).
    """
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError as exc:
        raise MalformedToken("The token holds non-ASCII characters") from exc
    parsed = parse_compact(raw)
    return Decoded(
        header=parsed.header,
        payload=parsed.payload,
        size=len(raw),
        fingerprint=token_hash(raw),
        warnings=tuple(_warnings(parsed, now)),
    )


def _warnings(parsed: ParsedToken, now: float) -> Iterable[str]:
    header, payload = parsed.header, parsed.payload
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        yield "alg is 'none' or missing: an unsigned token, never accepted"
    elif alg.startswith("HS"):
        yield f"alg {alg} is symmetric: valid only with a configured shared secret"
    if not parsed.signature:
        yield "the signature is empty"
    for name, text in _DANGEROUS_HEADERS.items():
        if name in header:
            yield text
    if "crit" in header:
        yield "crit is present: refused, no extension is understood"
    typ = header.get("typ")
    if isinstance(typ, str) and typ.lower() not in ("at+jwt", "application/at+jwt", "jwt"):
        yield f"typ is {typ!r}, not an access token type"
    exp = numeric_date(payload.get("exp"))
    if "exp" not in payload:
        yield "no exp: the token never expires"
    elif exp is not None and exp <= now:
        yield f"expired {relative(exp, now)}"
    nbf = numeric_date(payload.get("nbf"))
    if nbf is not None and nbf > now:
        yield f"not valid before {format_time(nbf)}"
    if "aud" not in payload:
        yield "no aud: only accepted where the issuer is configured by client id"


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check: passed (True), failed (False) or not run (None)."""

    name: str
    passed: bool | None
    detail: str
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        outcome = {True: "pass", False: "fail", None: "not_run"}[self.passed]
        return {
            "check": self.name,
            "outcome": outcome,
            "detail": self.detail,
            "reason": self.reason,
        }


@dataclass
class Review:
    """Was this token valid at ``at`` against these keys, and why."""

    at: float
    error: TokenError | None
    claims: Claims | None
    decoded: Decoded | None
    key: VerificationKey | None = None
    key_source: str | None = None
    available_kids: list[str | None] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    lifecycle: bool = False
    cause: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None

    @property
    def unavailable(self) -> bool:
        return isinstance(self.error, KeysUnavailable)

    def as_dict(self) -> dict[str, Any]:
        key = None
        if self.key is not None:
            key = {
                "kid": self.key.kid,
                "thumbprint": self.key.thumbprint,
                "kty": self.key.kty,
                "alg": self.key.jwk.get("alg"),
            }
        return {
            "valid": self.valid,
            "at": iso_time(self.at),
            "at_epoch": self.at,
            "error": None
            if self.error is None
            else {
                "error": self.error.error,
                "reason": self.error.reason,
                "claim": self.error.claim,
                "description": self.error.description,
                "status_code": self.error.status_code,
                "cause": self.cause,
            },
            "key": key,
            "key_source": self.key_source,
            "available_kids": self.available_kids,
            "checks": [check.as_dict() for check in self.checks],
            "header": self.decoded.header if self.decoded else None,
            "claims": self.decoded.payload if self.decoded else None,
            "token_hash": self.decoded.fingerprint if self.decoded else None,
        }


def _isolated(policy: ClaimsPolicy) -> ClaimsPolicy:
    # The same compiled policy with every other check switched off, to test one claim alone.
    return dataclasses.replace(
        policy,
        required_claims=(),
        max_age=None,
        max_lifetime=None,
        required_scopes=frozenset(),
        allowed_client_ids=None,
        claim_checks=(),
        audiences=None,
    )


def _claim_check(name: str, run: Any, detail: str) -> Check:
    try:
        run()
    except TokenError as exc:
        return Check(name, False, f"{exc.description}: {detail}", exc.reason)
    return Check(name, True, detail)


_HEADER_STAGES = {"alg": "algorithm", "typ": "type", "iss": "issuer"}


def review_token(
    validator: Validator,
    token: str,
    *,
    at: float,
    scopes: Iterable[str] = (),
    source_label: str | None = None,
) -> Review:
    """Validate ``token`` at time ``at`` and explain every check.

    The verdict is the validator's; the checks replay its stages one by one. ``validator``
    must use ``clock=lambda: at`` so that key sources and claims agree on the time.
    """
    required = frozenset(scopes)
    try:
        claims: Claims | None = validator.validate(token, scopes=required)
        error: TokenError | None = None
    except TokenError as exc:
        claims, error = None, exc
    review = Review(
        at=at,
        error=error,
        claims=claims,
        decoded=None,
        key_source=source_label,
        lifecycle=validator.lifecycle is not None,
    )
    checks = review.checks
    try:
        review.decoded = decode_token(token, at)
    except MalformedToken as exc:
        checks.append(Check("format", False, exc.description, exc.reason))
        return _finish(review)
    checks.append(Check("format", True, "a compact JWS with JSON header and payload"))
    try:
        parsed, route, kid, alg = validator._prepare(token)
    except TokenError as exc:
        if exc.claim is None:  # e.g. too large: a format failure after all
            checks[-1] = Check("format", False, exc.description, exc.reason)
            return _finish(review)
        stage = _HEADER_STAGES.get(exc.claim, "header")
        for name in ("algorithm", "header", "type", "issuer"):
            if name == stage:
                checks.append(Check(name, False, exc.description, exc.reason))
                break
            if name != "type" or validator.token_type is not None:
                checks.append(Check(name, True, "ok"))
        return _finish(review)
    checks.append(Check("algorithm", True, f"{alg} is allowed"))
    checks.append(Check("header", True, "no crit, b64 or malformed kid"))
    if validator.token_type is not None:
        checks.append(Check("type", True, f"typ is {validator.token_type}"))
    checks.append(Check("issuer", True, f"{route.issuer.issuer} is a configured issuer"))
    source = route.source
    try:
        verification_key, verifier = source.key_for(kid, alg, at)
    except TokenError as exc:
        current = source.current_keys()
        review.available_kids = [key.kid for key in current.keys] if current else []
        detail = exc.description
        if isinstance(exc, KeysUnavailable):
            review.cause = _unavailable_cause(exc, source)
            if review.cause:
                detail = f"{detail}: {review.cause}"
        checks.append(Check("key", False, detail, exc.reason))
        return _finish(review)
    current = source.current_keys()
    review.available_kids = [key.kid for key in current.keys] if current else []
    review.key = verification_key
    checks.append(
        Check(
            "key",
            True,
            f"kid {verification_key.kid} ({verification_key.kty}), "
            f"thumbprint {verification_key.thumbprint}",
        )
    )
    if not verifier(parsed.signing_input, parsed.signature):
        checks.append(Check("signature", False, "the signature does not verify", "bad_signature"))
        return _finish(review)
    checks.append(Check("signature", True, f"verifies with {alg}"))
    _claims_checks(review, route.policy, parsed.payload, at, required)
    return _finish(review)


def _claims_checks(
    review: Review,
    policy: ClaimsPolicy,
    payload: Mapping[str, Any],
    at: float,
    required: frozenset[str],
) -> None:
    checks = review.checks
    alone = _isolated(policy)
    missing = [name for name in policy.required_claims if name not in payload]
    if missing:
        checks.append(
            Check("required_claims", False, f"missing: {', '.join(missing)}", "missing_claim")
        )
    else:
        names = ", ".join(policy.required_claims) or "none"
        checks.append(Check("required_claims", True, f"present: {names}"))
    for name, label in (("exp", "expires"), ("nbf", "not before"), ("iat", "issued")):
        if name not in payload:
            if name not in policy.required_claims:
                checks.append(Check(name, None, "absent"))
            continue
        value = numeric_date(payload[name])
        text = (
            f"{label} {format_time(value)} ({relative(value, at)})"
            if value is not None
            else f"{label} {payload[name]!r}"
        )
        checks.append(
            _claim_check(name, lambda n=name: alone.check_times({n: payload[n]}, at), text)
        )
    if policy.max_age is not None or policy.max_lifetime is not None:
        bounded = dataclasses.replace(
            alone, max_age=policy.max_age, max_lifetime=policy.max_lifetime
        )
        checks.append(
            _claim_check("age", lambda: bounded.check_times(payload, at), "within max age/lifetime")
        )
    if policy.audiences is not None:
        audience = dataclasses.replace(alone, audiences=policy.audiences)
        checks.append(
            _claim_check(
                "audience",
                lambda: audience.check({"iss": policy.issuer, "aud": payload.get("aud")}, at),
                f"aud {payload.get('aud')!r}; accepted {', '.join(sorted(policy.audiences))}",
            )
        )
    if policy.allowed_client_ids is not None:
        clients = dataclasses.replace(alone, allowed_client_ids=policy.allowed_client_ids)
        client = payload.get("client_id", payload.get("azp"))
        checks.append(
            _claim_check(
                "client",
                lambda: clients.check(
                    {"iss": policy.issuer, "client_id": client}
                    if client is not None
                    else {"iss": policy.issuer},
                    at,
                ),
                f"client {client!r}; allowed {', '.join(sorted(policy.allowed_client_ids))}",
            )
        )
    if policy.claim_checks:
        custom = dataclasses.replace(alone, claim_checks=policy.claim_checks)
        checks.append(
            _claim_check("custom", lambda: custom.check(payload, at), "custom checks passed")
        )
    granted = read_scopes(payload, policy.scope_claim)
    needed = policy.required_scopes | required
    if needed:
        checks.append(
            _claim_check(
                "scopes",
                lambda: check_scopes(granted, needed),
                f"granted {' '.join(sorted(granted)) or '(none)'}; "
                f"required {' '.join(sorted(needed))}",
            )
        )
    else:
        checks.append(Check("scopes", None, f"none required; granted {' '.join(sorted(granted))}"))


def _unavailable_cause(exc: KeysUnavailable, source: object) -> str | None:
    """Why no keys could be had: the chained cause, or the key source's last fetch error."""
    if exc.__cause__ is not None:
        return str(exc.__cause__)
    status = getattr(source, "status", None)
    last_error = getattr(status(), "last_error", None) if callable(status) else None
    return str(last_error) if last_error else None


def _finish(review: Review) -> Review:
    """Make the breakdown agree with the verdict: name any refusal no stage explained."""
    error = review.error
    failed = any(check.passed is False for check in review.checks)
    if error is not None and not failed:
        name = "lifecycle" if isinstance(error, LifecycleError) else "validator"
        review.checks.append(Check(name, False, error.description, error.reason))
    elif error is None and review.claims is not None and review.lifecycle:
        review.checks.append(Check("lifecycle", True, "not revoked, cut off or distrusted"))
    return review
