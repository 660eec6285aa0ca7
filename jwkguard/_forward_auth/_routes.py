"""Per-route rules of the forward-auth server: host and path prefix -> scopes or anonymous.

The original path comes from the gateway and is attacker-controlled, so it is normalised the
way an upstream might read it (percent-decoded, repeated slashes merged) and refused when it is
ambiguous (dot segments, encoded slashes or backslashes, NUL): a route rule must never be
dodged by spelling a path differently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["AmbiguousPath", "Route", "RouteTable", "normalise_host", "normalise_path"]

_ENCODED_SEPARATOR = re.compile(r"%(?:2f|5c|00)", re.IGNORECASE)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SLASHES = re.compile(r"/{2,}")


class AmbiguousPath(ValueError):
    """The original path could be read two ways; it is refused, never guessed."""


@dataclass(frozen=True, slots=True)
class Route:
    """One rule: requests to ``host`` (any if None) under ``path`` (whole segments).

    Attributes:
        host: Exact host (case-insensitive), ``*.example.com`` for subdomains, or None.
        path: A path prefix; ``/orders`` matches ``/orders`` and ``/orders/1``, not ``/ordersx``.
        methods: Upper-case methods the rule applies to, or None for all.
        scopes: Scopes the token must grant.
        anonymous: No token needed; a token that is sent must still be valid.
        dpop: The token must be DPoP-bound (RFC 9449).
        certificate: The token must be bound to the client certificate (RFC 8705).
        introspect: Also ask the introspection endpoint whether the token is active.
    """

    host: str | None = None
    path: str = "/"
    methods: tuple[str, ...] | None = None
    scopes: frozenset[str] = frozenset()
    anonymous: bool = False
    dpop: bool = False
    certificate: bool = False
    introspect: bool = False

    def __post_init__(self) -> None:
        host = self.host.lower().rstrip(".") if self.host and self.host != "*" else None
        path = _SLASHES.sub("/", self.path)
        if len(path) > 1:
            path = path.rstrip("/")
        methods = tuple(m.upper() for m in self.methods) if self.methods is not None else None
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "methods", methods)

    def matches(self, host: str, path: str, method: str) -> bool:
        """True if this rule covers the (normalised) request."""
        if self.host is not None:
            if self.host.startswith("*."):
                if not host.endswith(self.host[1:]):
                    return False
            elif host != self.host:
                return False
        if self.methods is not None and method not in self.methods:
            return False
        prefix = self.path
        if prefix == "/":
            return True
        return path == prefix or path.startswith(prefix + "/")

    def specificity(self) -> tuple[int, int, int]:
        """Sort key: exact host, then wildcard host, then longer prefix, then with methods."""
        host_rank = 0 if self.host is None else 1 if self.host.startswith("*.") else 2
        return (host_rank, len(self.path), 1 if self.methods is not None else 0)

    def describe(self) -> str:
        """A short text for logs."""
        methods = ",".join(self.methods) if self.methods else "*"
        what = "anonymous" if self.anonymous else f"scopes={' '.join(sorted(self.scopes)) or '-'}"
        demands = "".join(
            f" {name}" for name in ("dpop", "certificate", "introspect") if getattr(self, name)
        )
        return f"methods={methods} host={self.host or '*'} path={self.path} {what}{demands}"


class RouteTable:
    """Rules ordered most specific first; the first that matches wins."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(sorted(routes, key=Route.specificity, reverse=True))

    def match(self, host: str, path: str, method: str) -> Route | None:
        """The rule for a normalised request, or None when none matches."""
        for route in self.routes:
            if route.matches(host, path, method):
                return route
        return None

    def __len__(self) -> int:
        return len(self.routes)


def normalise_host(value: str) -> str:
    """Lower-case, without port or trailing dot (IPv6 literals keep their brackets)."""
    host = value.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    host = host.split(":", 1)[0]
    return host.rstrip(".")


def normalise_path(uri: str) -> tuple[str, str]:
    """Split a request target into a normalised path and its raw query string.

    Raises:
        AmbiguousPath: Not an origin-form path, a bad escape, an encoded slash, backslash or
            NUL, or a dot segment.
    """
    target = uri.split("#", 1)[0]
    raw_path, _, query = target.partition("?")
    if not raw_path.startswith("/"):
        raise AmbiguousPath("the original URI is not an absolute path")
    if _BAD_ESCAPE.search(raw_path) or _ENCODED_SEPARATOR.search(raw_path):
        raise AmbiguousPath("the original path holds an encoded separator or a bad escape")
    try:
        path = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        raise AmbiguousPath("the original path is not UTF-8") from None
    if "\\" in path or any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        raise AmbiguousPath("the original path holds control characters or a backslash")
    path = _SLASHES.sub("/", path)
    if any(segment in (".", "..") for segment in path.split("/")):
        raise AmbiguousPath("the original path holds a dot segment")
    return path, query
