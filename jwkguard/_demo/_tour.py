"""The narrated tour: real HTTP requests to the example API, each checked against the story."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..testing import sign_compact
from ._console import Console
from ._stack import CACHE_SECONDS, DemoStack

__all__ = ["Step", "run_tour", "steps"]


@dataclass
class Seen:
    """What one step observed, and whether it is what the story says."""

    ok: bool
    response: httpx.Response | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """One stop of the tour."""

    title: str
    story: str
    run: Callable[[DemoStack, httpx.Client], Seen]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


_BODY_WIDTH = 96


def _body(response: httpx.Response) -> str:
    """The answer's body in one short line (error bodies by their code and reason)."""
    try:
        document = response.json()
    except ValueError:
        text = response.text
    else:
        if isinstance(document, dict) and "reason" in document and response.status_code >= 400:
            return f"error={document.get('error')}  reason={document.get('reason')}"
        text = json.dumps(document, separators=(", ", ": "))
    return text if len(text) <= _BODY_WIDTH else text[: _BODY_WIDTH - 1] + "…"


def _refused(client: httpx.Client, token: str, reason: str) -> Seen:
    """GET /orders with ``token`` and expect 401 ``invalid_token`` for ``reason``."""
    return _expect(
        client.get("/orders", headers=_bearer(token)),
        401,
        reason=reason,
        challenge={"error": "invalid_token"},
    )


def _expect(
    response: httpx.Response,
    status: int,
    *,
    reason: str | None = None,
    challenge: Mapping[str, str] | None = None,
) -> Seen:
    """Compare the answer with the expected status, body reason and challenge parameters."""
    notes: list[str] = []
    ok = response.status_code == status
    if reason is not None:
        try:
            found = response.json().get("reason")
        except ValueError:
            found = None
        ok = ok and found == reason
    header = response.headers.get("www-authenticate")
    if challenge is not None:
        ok = ok and header is not None
        for name, value in challenge.items():
            ok = ok and header is not None and f'{name}="{value}"' in header
    if header is not None:
        notes.append(f"WWW-Authenticate: {header}")
    return Seen(ok, response, notes)


# -- the steps --------------------------------------------------------------------------------


def _valid(stack: DemoStack, client: httpx.Client) -> Seen:
    token = stack.issuer.mint(subject="alice", scopes=["orders:read"])
    response = client.get("/me", headers=_bearer(token))
    seen = _expect(response, 200)
    if seen.ok:
        seen.ok = response.json().get("subject") == "alice"
    return seen


def _missing(stack: DemoStack, client: httpx.Client) -> Seen:
    response = client.get("/orders")
    seen = _expect(response, 401, reason="missing_token")
    header = response.headers.get("www-authenticate", "")
    seen.ok = seen.ok and header.startswith("Bearer realm=") and "error=" not in header
    return seen


def _expired(stack: DemoStack, client: httpx.Client) -> Seen:
    token = stack.issuer.mint(scopes=["orders:read"], now=time.time() - 3600, lifetime=300)
    return _refused(client, token, "expired")


def _wrong_audience(stack: DemoStack, client: httpx.Client) -> Seen:
    token = stack.issuer.mint(scopes=["orders:read"], audience="https://billing.example.com")
    return _refused(client, token, "audience_mismatch")


def _claims(stack: DemoStack) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": stack.issuer.url,
        "aud": stack.issuer.audience,
        "sub": "mallory",
        "scope": "orders:read orders:write",
        "iat": now,
        "exp": now + 300,
    }


def _alg_none(stack: DemoStack, client: httpx.Client) -> Seen:
    header = {"alg": "none", "typ": "at+jwt", "kid": stack.issuer.active_key.kid}
    token = sign_compact(header, _claims(stack))
    return _refused(client, token, "algorithm_not_allowed")


def _hs256_with_public_key(stack: DemoStack, client: httpx.Client) -> Seen:
    # The classic key-confusion forgery: HMAC keyed with the issuer's *public* key.
    from cryptography.hazmat.primitives import serialization

    public_pem = stack.issuer.active_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": stack.issuer.active_key.kid}
    token = sign_compact(header, _claims(stack), secret=public_pem, alg="HS256")
    return _refused(client, token, "algorithm_not_allowed")


def _insufficient_scope(stack: DemoStack, client: httpx.Client) -> Seen:
    token = stack.issuer.mint(subject="alice", scopes=["orders:read"])
    return _expect(
        client.post("/orders", headers=_bearer(token), json={"item": "tea", "quantity": 1}),
        403,
        reason="insufficient_scope",
        challenge={"error": "insufficient_scope", "scope": "orders:write"},
    )


def _write(stack: DemoStack, client: httpx.Client) -> Seen:
    token = stack.issuer.mint(subject="alice", scopes=["orders:read", "orders:write"])
    response = client.post("/orders", headers=_bearer(token), json={"item": "tea", "quantity": 1})
    seen = _expect(response, 201)
    seen.ok = seen.ok and response.json().get("owner") == "alice"
    return seen


def _rotation(stack: DemoStack, client: httpx.Client) -> Seen:
    issuer = stack.issuer
    before = issuer.requests["/jwks.json"]
    key = issuer.rotate()
    token = issuer.mint(subject="alice", scopes=["orders:read"])
    response = client.get("/me", headers=_bearer(token))
    fetches = issuer.requests["/jwks.json"] - before
    seen = _expect(response, 200)
    seen.ok = seen.ok and response.json().get("key_id") == key.kid and fetches == 1
    seen.notes.append(f"new key {key.kid}: the JWK Set was fetched {fetches} time(s)")
    return seen


def _outage(stack: DemoStack, client: httpx.Client) -> Seen:
    issuer = stack.issuer
    token = issuer.mint(subject="alice", scopes=["orders:read"])
    before = issuer.requests["/jwks.json"]
    with issuer.outage(503):
        time.sleep(CACHE_SECONDS + 0.3)  # the cached key set is now due for a refresh
        response = client.get("/orders", headers=_bearer(token))
        deadline = time.monotonic() + 5
        while issuer.requests["/jwks.json"] == before and time.monotonic() < deadline:
            time.sleep(0.05)  # the refresh runs in the background; let it fail visibly
        again = client.get("/orders", headers=_bearer(token))
        failed = issuer.requests["/jwks.json"] - before
    seen = _expect(response, 200)
    seen.ok = seen.ok and again.status_code == 200 and failed >= 1
    seen.notes.append(
        f"the issuer answered 503 to {failed} refresh attempt(s); the last good keys served"
    )
    return seen


def _revoked(stack: DemoStack, client: httpx.Client) -> Seen:
    token = stack.issuer.mint(subject="bob", scopes=["orders:read"], now=time.time() - 5)
    accepted = client.get("/orders", headers=_bearer(token)).status_code == 200
    stack.admin.cut_off_subject(
        "bob", issuer=stack.issuer.url, by="demo@ops", why="bob left the company"
    )
    seen = _refused(client, token, "subject_cut_off")
    seen.ok = seen.ok and accepted
    record = stack.last_audit()
    if record is not None:
        seen.notes.append(f"audit: {json.dumps(record, separators=(',', ':'))}")
    return seen


def steps() -> list[Step]:
    """The tour, in order."""
    return [
        Step(
            "A valid token is accepted",
            "GET /me with a token for alice (scope orders:read) -> 200 and her claims",
            _valid,
        ),
        Step(
            "No token: a bare challenge",
            "GET /orders without Authorization -> 401, WWW-Authenticate without an error code",
            _missing,
        ),
        Step(
            "An expired token is refused",
            "a token that expired 55 minutes ago -> 401 invalid_token (expired)",
            _expired,
        ),
        Step(
            "A token for another API is refused",
            "aud is https://billing.example.com -> 401 invalid_token (audience_mismatch)",
            _wrong_audience,
        ),
        Step(
            "Forged: alg none",
            "an unsigned token claiming every scope -> 401 (the algorithm is not allowed)",
            _alg_none,
        ),
        Step(
            "Forged: HS256 keyed with the public key",
            "the key-confusion attack -> 401 (HMAC is never checked against a JWK Set)",
            _hs256_with_public_key,
        ),
        Step(
            "Insufficient scope",
            "POST /orders with only orders:read -> 403 insufficient_scope, scope=orders:write",
            _insufficient_scope,
        ),
        Step(
            "The right scope",
            "POST /orders with orders:write -> 201 Created",
            _write,
        ),
        Step(
            "Key rotation at the issuer",
            "the issuer signs with a new key -> accepted after exactly one JWK Set refetch",
            _rotation,
        ),
        Step(
            "Issuer outage",
            "the issuer answers 503 and the cache is due -> known keys keep working",
            _outage,
        ),
        Step(
            "A revoked subject",
            "an admin cuts bob off (offboarding) -> his still-unexpired token gets 401",
            _revoked,
        ),
    ]


def _report(step: Step, seen: Seen) -> dict[str, Any]:
    response = seen.response
    reason = None
    if response is not None:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            reason = body.get("reason")
    return {
        "title": step.title,
        "story": step.story,
        "ok": seen.ok,
        "request": None
        if response is None
        else f"{response.request.method} {response.request.url.raw_path.decode()}",
        "status": None if response is None else response.status_code,
        "reason": reason,
        "www_authenticate": None if response is None else response.headers.get("www-authenticate"),
        "notes": seen.notes,
    }


def run_tour(stack: DemoStack, console: Console, reports: list[dict[str, Any]]) -> bool:
    """Run every step, narrate it, append a report per step; True if all behaved as told."""
    tour = steps()
    all_ok = True
    with httpx.Client(base_url=stack.url, timeout=15) as client:
        for index, step in enumerate(tour, 1):
            console.step(index, len(tour), step.title)
            console.row("story", step.story)
            try:
                seen = step.run(stack, client)
            except httpx.HTTPError as exc:
                seen = Seen(False, notes=[f"request failed: {exc}"])
            response = seen.response
            if response is not None:
                console.row(
                    "request", f"{response.request.method} {response.request.url.raw_path.decode()}"
                )
                console.row("answer", f"{response.status_code} {response.reason_phrase}")
                console.row("body", _body(response))
            for note in seen.notes:
                console.row("", note)
            console.verdict(seen.ok, "as told" if seen.ok else "NOT as told")
            reports.append(_report(step, seen))
            all_ok = all_ok and seen.ok
    return all_ok
