"""``jwkguard keys ISSUER``: what an issuer publishes, as jwkguard would see it.

A diagnostic: it shows the discovery document's location, the JWK Set's cache headers and
every published key (usable or not, with the reason), fetched with the same guards as the key
source (timeout, size cap, HTTPS unless loopback, no redirects).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click
from joserfc.jwk import JWKRegistry

from .._algorithms import ASYMMETRIC_ALGORITHMS
from .._issuer import is_loopback_host
from .._parse import b64url_decode
from ..keys._set import KeySet
from ._output import EXIT_OK, EXIT_UNAVAILABLE, Style, emit_json, fail, table

if TYPE_CHECKING:
    import httpx

__all__ = ["KeysReport", "KeysUnreachable", "fetch_keys", "keys_command"]

CACHE_HEADERS = ("cache-control", "expires", "etag", "last-modified", "age", "date")
_MAX_BYTES = 512 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


class KeysUnreachable(Exception):
    """The documents could not be fetched or are not what they should be."""


@dataclass
class Fetched:
    """One HTTP exchange's outcome."""

    url: str
    status: int
    headers: dict[str, str]
    document: dict[str, Any]
    size: int


@dataclass
class KeysReport:
    """Discovery, JWK Set location, cache headers and keys of one issuer."""

    issuer: str
    discovery_url: str | None = None
    jwks_uri: str | None = None
    jwks_status: int | None = None
    cache_headers: dict[str, str] = field(default_factory=dict)
    cache_ttl: float | None = None
    size: int = 0
    keys: list[dict[str, Any]] = field(default_factory=list)

    @property
    def usable(self) -> int:
        return sum(1 for key in self.keys if key["usable"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "discovery_url": self.discovery_url,
            "jwks_uri": self.jwks_uri,
            "jwks_status": self.jwks_status,
            "cache_headers": self.cache_headers,
            "cache_ttl": self.cache_ttl,
            "size": self.size,
            "usable_keys": self.usable,
            "keys": self.keys,
        }


def _check_url(url: str, allow_http: bool) -> None:
    scheme = urlsplit(url).scheme
    if scheme == "https" or (scheme == "http" and (is_loopback_host(url) or allow_http)):
        return
    raise KeysUnreachable(
        f"{url} must use https (http only for loopback hosts); pass --allow-http to read it "
        "anyway (never in production)"
    )


def _get(client: httpx.Client, url: str, allow_http: bool) -> Fetched:
    import httpx

    _check_url(url, allow_http)
    try:
        with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > _MAX_BYTES:
                    raise KeysUnreachable(f"{url}: the response is larger than {_MAX_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise KeysUnreachable(f"{url}: {type(exc).__name__}: {exc}") from exc
    headers = {name: response.headers[name] for name in CACHE_HEADERS if name in response.headers}
    if response.is_redirect:
        raise KeysUnreachable(
            f"{url} redirects to {response.headers.get('location')}; redirects are not followed"
        )
    document: dict[str, Any] = {}
    if response.status_code == 200:
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            raise KeysUnreachable(f"{url}: the response is not JSON") from exc
        if not isinstance(parsed, dict):
            raise KeysUnreachable(f"{url}: the response is not a JSON object")
        document = parsed
    return Fetched(url, response.status_code, headers, document, len(body))


def _discovery_urls(issuer: str) -> list[str]:
    base = issuer.rstrip("/")
    parts = urlsplit(base)
    urls = [f"{base}/.well-known/openid-configuration"]
    # RFC 8414 section 3.1: the well-known segment goes between host and path.
    urls.append(
        f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{parts.path}"
    )
    return urls


def _ttl(headers: Mapping[str, str]) -> float | None:
    match = _MAX_AGE.search(headers.get("cache-control", ""))
    return float(match.group(1)) if match else None


def _key_size(jwk: Mapping[str, Any]) -> str:
    if jwk.get("kty") == "RSA" and isinstance(jwk.get("n"), str):
        try:
            return str(int.from_bytes(b64url_decode(jwk["n"].encode("ascii")), "big").bit_length())
        except Exception:
            return "?"
    crv = jwk.get("crv")
    return str(crv) if isinstance(crv, str) else "-"


def _thumbprint(jwk: Mapping[str, Any]) -> str | None:
    if jwk.get("kty") == "oct":
        return None  # a hash of a secret is still too much to print
    try:
        return str(JWKRegistry.import_key(dict(jwk)).thumbprint())
    except Exception:
        return None


def describe_keys(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every entry of a JWK Set with its thumbprint and whether jwkguard would use it."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise KeysUnreachable("the JWK Set has no 'keys' array")
    usable = KeySet.from_jwks(document, ASYMMETRIC_ALGORITHMS, max_keys=max(len(entries), 1))
    by_thumbprint = usable.by_thumbprint()
    skipped = dict(usable.skipped)
    described = []
    for entry in entries:
        jwk = entry if isinstance(entry, Mapping) else {}
        thumbprint = _thumbprint(jwk)
        key = by_thumbprint.get(thumbprint) if thumbprint else None
        kid = jwk.get("kid") if isinstance(jwk.get("kid"), str) else None
        described.append(
            {
                "kid": kid,
                "kty": jwk.get("kty"),
                "alg": jwk.get("alg"),
                "use": jwk.get("use"),
                "size": _key_size(jwk),
                "thumbprint": thumbprint,
                "usable": key is not None,
                "algorithms": sorted(key.verifiers) if key is not None else [],
                "reason": None if key is not None else skipped.get(kid, "not usable"),
            }
        )
    return described


def fetch_keys(
    issuer: str,
    *,
    jwks_uri: str | None = None,
    timeout: float = 5.0,
    allow_http: bool = False,
) -> KeysReport:
    """Fetch ``issuer``'s discovery document (unless ``jwks_uri`` is given) and JWK Set.

    Raises:
        KeysUnreachable: A fetch failed, a document is invalid, or the discovery document
            names another issuer.
    """
    import httpx

    report = KeysReport(issuer=issuer)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        if jwks_uri is None:
            attempts = []
            for url in _discovery_urls(issuer):
                fetched = _get(client, url, allow_http)
                attempts.append(f"{url} ({fetched.status})")
                if fetched.status == 200:
                    break
            else:
                raise KeysUnreachable(f"no discovery document: {', '.join(attempts)}")
            if fetched.document.get("issuer") != issuer:
                raise KeysUnreachable(
                    f"the discovery document names issuer {fetched.document.get('issuer')!r}, "
                    f"not {issuer!r}"
                )
            found = fetched.document.get("jwks_uri")
            if not isinstance(found, str):
                raise KeysUnreachable(f"{fetched.url} has no jwks_uri")
            report.discovery_url = fetched.url
            jwks_uri = found
        report.jwks_uri = jwks_uri
        fetched = _get(client, jwks_uri, allow_http)
    report.jwks_status = fetched.status
    report.cache_headers = fetched.headers
    report.size = fetched.size
    if fetched.status != 200:
        raise KeysUnreachable(f"{jwks_uri} answered {fetched.status}")
    report.cache_ttl = _ttl(fetched.headers)
    report.keys = describe_keys(fetched.document)
    return report


def _render(report: KeysReport, style: Style) -> None:
    rows = [["issuer", report.issuer]]
    if report.discovery_url:
        rows.append(["discovery", report.discovery_url])
    rows.append(["jwks_uri", f"{report.jwks_uri}  {style.dim(f'({report.size} bytes)')}"])
    for name in CACHE_HEADERS:
        if name in report.cache_headers:
            rows.append([name, report.cache_headers[name]])
    if report.cache_ttl is not None:
        rows.append(["cache for", f"{report.cache_ttl:g} s (jwkguard clamps to min_ttl..max_ttl)"])
    else:
        rows.append(["cache for", "no max-age: jwkguard uses default_ttl"])
    click.echo(table([[style.bold(a), b] for a, b in rows], indent=0))
    click.echo()
    click.echo(style.bold(f"Keys: {report.usable} usable of {len(report.keys)}"))
    header = ["", "KID", "KTY", "ALG", "USE", "SIZE", "THUMBPRINT (RFC 7638)", "NOTE"]
    lines = [[style.dim(cell) for cell in header]]
    for key in report.keys:
        lines.append(
            [
                style.mark(bool(key["usable"])),
                str(key["kid"]),
                str(key["kty"]),
                str(key["alg"] or "-"),
                str(key["use"] or "-"),
                str(key["size"]),
                str(key["thumbprint"] or "-"),
                ", ".join(key["algorithms"]) if key["usable"] else str(key["reason"]),
            ]
        )
    click.echo(table(lines))


@click.command("keys")
@click.argument("issuer")
@click.option("--jwks-uri", help="Skip discovery and read this JWK Set URL.")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Per request (s).")
@click.option("--allow-http", is_flag=True, help="Allow plain http for a non-loopback issuer.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def keys_command(
    issuer: str, jwks_uri: str | None, timeout: float, allow_http: bool, as_json: bool
) -> None:
    """Show ISSUER's discovery document, JWK Set cache headers and keys with thumbprints.

    Exit status: 0 at least one usable key, 2 usage, 3 unreachable or no usable key.
    """
    try:
        report = fetch_keys(issuer, jwks_uri=jwks_uri, timeout=timeout, allow_http=allow_http)
    except KeysUnreachable as exc:
        fail(str(exc), EXIT_UNAVAILABLE, as_json=as_json, issuer=issuer)
    code = EXIT_OK if report.usable else EXIT_UNAVAILABLE
    if as_json:
        emit_json({**report.as_dict(), "exit_code": code})
    else:
        _render(report, Style())
        if not report.usable:
            click.echo(Style(sys.stderr).bad("no usable key"), err=True)
    raise SystemExit(code)
