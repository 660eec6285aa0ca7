"""Authorization server metadata: where to look for it, and what must hold in it.

OpenID Connect Discovery 1.0 section 4 and RFC 8414 section 3: the document's ``issuer`` must
equal the configured issuer exactly, or the document is refused (section 4.3 / 3.3: this is
what stops one issuer from impersonating another).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ._cache import FetchError

__all__ = ["discovery_urls", "jwks_uri_from"]

_OIDC = "/.well-known/openid-configuration"
_OAUTH = "/.well-known/oauth-authorization-server"


def discovery_urls(issuer: str) -> tuple[str, ...]:
    """The metadata locations to try for ``issuer``, in order.

    ``{issuer}/.well-known/openid-configuration`` first (OpenID Connect Discovery), then
    RFC 8414's ``/.well-known/oauth-authorization-server`` inserted before the issuer's path,
    then the same suffix appended to the issuer (a common non-standard placement).
    """
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    base = issuer.rstrip("/")
    urls = [
        f"{base}{_OIDC}",
        urlunsplit((parts.scheme, parts.netloc, f"{_OAUTH}{path}", "", "")),
        f"{base}{_OAUTH}",
    ]
    return tuple(dict.fromkeys(urls))


def jwks_uri_from(document: Mapping[str, Any], issuer: str, url: str) -> str:
    """The ``jwks_uri`` of a metadata document, after checking its ``issuer``.

    Raises:
        FetchError: ``issuer_mismatch`` or ``no_jwks_uri``.
    """
    named = document.get("issuer")
    if named != issuer:
        raise FetchError(
            "issuer_mismatch",
            f"the metadata at {url} names issuer {named!r}, not the configured {issuer!r}",
        )
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise FetchError("no_jwks_uri", f"the metadata at {url} has no jwks_uri")
    return jwks_uri
