"""Per-route rules of the forward-auth server: host and path prefix -> scopes or anonymous.

The original path comes from the gateway and is attacker-controlled. It is read on one canonical
form (percent-decoded once, repeated slashes merged) and refused when an upstream could read it
another way (:func:`normalise_path`); then :meth:`RouteTable.resolve` also asks which rule the
path would get with its slashes unmerged and with its letters case-folded, and refuses the
request when the answers differ: a route rule must never be dodged by spelling a path
differently.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from ..pipeline._pipeline import RouteDemands

__all__ = [
    "AmbiguousPath",
    "MethodNotNamed",
    "OriginalPath",
    "RouteRule",
    "RouteTable",
    "normalise_host",
    "normalise_path",
]

# Escapes an upstream may decode again or read as structure: "%25" (double encoding), "/",
# "\\", ";" (path parameters), "?", "#", and control characters.
_AMBIGUOUS_ESCAPE = re.compile(r"%(?:25|2f|5c|3b|3f|23|[01][0-9a-f]|7f)", re.IGNORECASE)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_TARGET = re.compile(r"[\x21-\x7e]*")
_SLASHES = re.compile(r"/{2,}")
# Case-insensitive upstreams also read these two as ASCII: JavaScript's and Java's upper case
# of the dotless i (U+0131) is "I", and Java's equalsIgnoreCase takes the dotted capital I
# (U+0130) for "i". casefold() keeps both apart from "i".
_TURKISH_I = str.maketrans({"\u0131": "i", "\u0130": "i"})


def _fold(text: str) -> str:
    """``text`` as a case-insensitive upstream may compare it."""
    return text.translate(_TURKISH_I).casefold()


class AmbiguousPath(ValueError):
    """The original path could be read two ways; it is refused, never guessed."""


@dataclass(frozen=True, slots=True)
class RouteRule(RouteDemands):
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
        acr_values: Step-up (RFC 9470): the token's ``acr`` must be one of these.
        max_age: Step-up (RFC 9470): the user authenticated at most this many seconds ago.
        any_scopes: The token must grant at least one of these scopes.
        roles: The token must hold all of these roles.
        any_roles: The token must hold at least one of these roles.
        issuers: Only tokens from these issuers.
        audiences: Only tokens whose ``aud`` names one of these.
    """

    host: str | None = None
    path: str = "/"
    methods: tuple[str, ...] | None = None
    scopes: frozenset[str] = frozenset()
    anonymous: bool = False

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
        """True if this rule covers the (normalised) request; HEAD counts as GET."""
        return (
            self.covers_host(host)
            and _under(path, self.path)
            and (self.methods is None or _rule_method(method) in self.methods)
        )

    def covers_host(self, host: str) -> bool:
        """True if this rule applies to the (normalised) ``host``."""
        if self.host is None:
            return True
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host

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
        if self.acr_values:
            demands += f" acr_values={' '.join(self.acr_values)}"
        if self.max_age is not None:
            demands += f" max_age={self.max_age}"
        for name in ("any_scopes", "roles", "any_roles", "issuers", "audiences"):
            values: frozenset[str] = getattr(self, name)
            if values:
                demands += f" {name}={','.join(sorted(values))}"
        return f"methods={methods} host={self.host or '*'} path={self.path} {what}{demands}"


class MethodNotNamed(LookupError):
    """The rules of the path prefix name methods, and not this one: refused, never weakened."""


class OriginalPath(tuple[str, str, str]):
    """A normalised original path: ``(path, query, unmerged)``.

    ``path`` is the canonical form (decoded once, repeated slashes merged), ``query`` the raw
    query string, ``unmerged`` the decoded path with its slashes as sent.
    """

    __slots__ = ()

    def __new__(cls, path: str, query: str, unmerged: str) -> OriginalPath:
        return super().__new__(cls, (path, query, unmerged))

    @property
    def path(self) -> str:
        return self[0]

    @property
    def query(self) -> str:
        return self[1]

    @property
    def unmerged(self) -> str:
        return self[2]


_NOT_NAMED = -1


class RouteTable:
    """Rules ordered most specific first.

    The most specific rule whose host and path cover the request decides its prefix: among the
    rules for that same host and path, the first whose methods name the request's method (a
    rule without ``methods`` names all) applies. If none does, the request is refused rather
    than left to a less specific, weaker rule. HEAD follows GET's rule (RFC 9110 section 9.3.2).
    """

    def __init__(self, routes: Iterable[RouteRule]) -> None:
        self.routes = tuple(sorted(routes, key=RouteRule.specificity, reverse=True))
        self._paths = tuple(route.path for route in self.routes)
        self._folded = tuple(_fold(path) for path in self._paths)

    def _select(self, host: str, path: str, method: str, *, fold: bool = False) -> int | None:
        method = _rule_method(method)
        prefixes = self._folded if fold else self._paths
        if fold:
            path = _fold(path)
        chosen: tuple[str | None, str] | None = None
        for index, route in enumerate(self.routes):
            if chosen is not None:
                if (route.host, route.path) != chosen:
                    continue
            elif route.covers_host(host) and _under(path, prefixes[index]):
                chosen = (route.host, route.path)
            else:
                continue
            if route.methods is None or method in route.methods:
                return index
        return None if chosen is None else _NOT_NAMED

    def _names(self, host: str, path: str, prefixes: tuple[str, ...]) -> bool:
        """True if a rule for ``host`` has exactly ``path`` (one of ``prefixes``) as its path."""
        return any(
            prefix == path and route.covers_host(host)
            for route, prefix in zip(self.routes, prefixes, strict=True)
        )

    def match(self, host: str, path: str, method: str) -> RouteRule | None:
        """The rule for a normalised request, or None when none matches.

        Raises:
            MethodNotNamed: The rules of the request's prefix do not name its method.
        """
        index = self._select(host, path, method)
        if index == _NOT_NAMED:
            raise MethodNotNamed(method)
        return None if index is None else self.routes[index]

    def resolve(self, host: str, original: OriginalPath, method: str) -> RouteRule | None:
        """The rule for ``original``, the same whichever way an upstream reads the path.

        Raises:
            AmbiguousPath: Merging slashes or folding letter case changes the rule, or the
                last segment is a rule's own plus a ``.suffix`` (and no rule names it).
            MethodNotNamed: The rules of the request's prefix do not name its method.
        """
        index = self._select(host, original.path, method)
        if original.unmerged != original.path and (
            self._select(host, original.unmerged, method) != index
        ):
            raise AmbiguousPath("the rule for the original path depends on repeated slashes")
        if self._select(host, original.path, method, fold=True) != index:
            raise AmbiguousPath("the rule for the original path depends on letter case")
        # Rails routes /admin.json to /admin (a format), as Spring's suffix matching did: a
        # rule for /admin must not be dodged by a suffix, unless a rule names /admin.json.
        stem = _without_suffix(original.path)
        if (
            stem != original.path
            and self._names(host, _fold(stem), self._folded)
            and not self._names(host, original.path, self._paths)
        ):
            raise AmbiguousPath("the rule for the original path depends on a '.suffix'")
        if index == _NOT_NAMED:
            raise MethodNotNamed(method)
        return None if index is None else self.routes[index]

    def __len__(self) -> int:
        return len(self.routes)


def _without_suffix(path: str) -> str:
    """``path`` without the ``.suffix`` of its last segment (``/a/b.tar.gz`` is ``/a/b``)."""
    head, _, last = path.rpartition("/")
    stem = last.split(".", 1)[0]
    return f"{head}/{stem}" if stem and stem != last else path


def _rule_method(method: str) -> str:
    return "GET" if method == "HEAD" else method


def _under(path: str, prefix: str) -> bool:
    if prefix == "/":
        return True
    return path == prefix or path.startswith(prefix + "/")


def normalise_host(value: str) -> str:
    """Lower-case, without port or trailing dot (IPv6 literals keep their brackets)."""
    host = value.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    host = host.split(":", 1)[0]
    return host.rstrip(".")


def normalise_path(uri: str) -> OriginalPath:
    """Split a request target into its canonical path, its raw query and its unmerged path.

    Raises:
        AmbiguousPath: Not an origin-form target of visible ASCII; a ``#``; a ``;`` in the
            path (path parameters, ``..;/``); a bad escape, or one an upstream may read as
            structure or decode again (``%25``, ``%2F``, ``%5C``, ``%3B``, ``%3F``, ``%23``,
            control characters); not UTF-8 once decoded; a backslash; a dot segment, or a
            segment that starts with a space or ends in a dot or a space; text that Unicode
            compatibility normalisation (NFKC) would change.
    """
    if not _TARGET.fullmatch(uri) or "#" in uri:
        raise AmbiguousPath("the original request target holds a '#', a space or a non-ASCII byte")
    raw_path, _, query = uri.partition("?")
    if not raw_path.startswith("/"):
        raise AmbiguousPath("the original URI is not an absolute path")
    if ";" in raw_path or "\\" in raw_path:
        raise AmbiguousPath("the original path holds a ';' (path parameters) or a backslash")
    if _BAD_ESCAPE.search(raw_path) or _AMBIGUOUS_ESCAPE.search(raw_path):
        raise AmbiguousPath("the original path holds an encoded separator or a bad escape")
    try:
        unmerged = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        raise AmbiguousPath("the original path is not UTF-8") from None
    if unicodedata.normalize("NFKC", unmerged) != unmerged:
        raise AmbiguousPath("the original path changes under Unicode normalisation")
    segments = unmerged.split("/")
    if any(segment in (".", "..") for segment in segments):
        raise AmbiguousPath("the original path holds a dot segment")
    if any(segment.endswith((".", " ")) or segment.startswith(" ") for segment in segments):
        # IIS drops a segment's trailing dots and spaces, older Spring trims its spaces.
        raise AmbiguousPath("a segment of the original path ends in a dot or a space")
    return OriginalPath(_SLASHES.sub("/", unmerged), query, unmerged)
