"""Whose word is the original request? The gateway's, read the way that gateway writes it.

Behind a gateway the forward-auth server sees a subrequest; the request it must judge (method,
host, path) is described by the gateway. Which headers describe it is configured, never
inferred: ``server.gateway`` names the flavour, and only that flavour's headers are read, only
from peers in ``server.trusted_proxies`` (checked by the app before any reader runs).

- ``nginx`` (``auth_request``): ``X-Original-Method``, ``X-Original-URI`` and
  ``X-Forwarded-Host`` as the documented ``proxy_set_header`` lines set them; optionally
  ``X-Forwarded-Proto``.
- ``traefik`` (``ForwardAuth``): ``X-Forwarded-Method``, ``X-Forwarded-Uri``,
  ``X-Forwarded-Host`` and optionally ``X-Forwarded-Proto``, which Traefik writes itself.
- ``envoy`` (``ext_authz`` HTTP service): the subrequest's own method, its path after
  ``path_prefix``, its query and its ``Host``; optionally ``X-Forwarded-Proto``.

Each header read must be sent exactly once: a duplicate is refused (400 ``invalid_request``),
never "the first one wins". The headers the *other* flavours use to describe the original
request must be absent or say the same thing; when they disagree, a client's copy is leaking
through the gateway (or the wrong flavour is configured) and the request is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import InvalidRequest
from ..pipeline._request_view import HOST as _HOST

__all__ = ["GATEWAYS", "OriginalRequest", "Reader", "reader_for"]

_METHOD = re.compile(r"[A-Z][A-Z0-9_-]{0,31}")


class Headers(Protocol):
    """What a reader needs of the subrequest's headers (Starlette's ``Headers`` has it)."""

    def getlist(self, key: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class OriginalRequest:
    """The request the client sent to the gateway, as the gateway describes it.

    Attributes:
        method: The method, an upper-case token.
        scheme: ``https`` (the default) or ``http``.
        host: The ``Host`` the client addressed, port included, as sent.
        target: The request target (path and query), raw, as sent.
    """

    method: str
    scheme: str
    host: str
    target: str

    @property
    def url(self) -> str:
        """The URL the client addressed (what a DPoP proof's ``htu`` names)."""
        return f"{self.scheme}://{self.host}{self.target}"


def _one(headers: Headers, name: str) -> str | None:
    values = headers.getlist(name)
    if len(values) > 1:
        raise InvalidRequest(
            f"The gateway sent {name} more than once", reason="duplicate_original_header"
        )
    if not values or not values[0]:
        return None
    return values[0]


def _required(headers: Headers, name: str, reason: str) -> str:
    value = _one(headers, name)
    if value is None:
        raise InvalidRequest(f"The gateway sent no {name} header", reason=reason)
    return value


def _checked(method: str, scheme: str | None, host: str, target: str) -> OriginalRequest:
    if not _METHOD.fullmatch(method):
        raise InvalidRequest("The original method is not an upper-case token", reason="bad_method")
    chosen = "https" if scheme is None else scheme.lower()
    if chosen not in ("http", "https"):
        raise InvalidRequest("X-Forwarded-Proto must be http or https", reason="bad_scheme")
    if not _HOST.fullmatch(host):
        raise InvalidRequest("The original host is not a host name", reason="bad_host")
    return OriginalRequest(method=method, scheme=chosen, host=host, target=target)


def _no_conflict(headers: Headers, expected: Mapping[str, str]) -> None:
    for name, value in expected.items():
        if any(sent != value for sent in headers.getlist(name)):
            raise InvalidRequest(
                f"{name} disagrees with the original request the gateway describes",
                reason="conflicting_original_header",
            )


class Reader(Protocol):
    """Reads the original request of one gateway flavour, or raises ``InvalidRequest``."""

    name: str

    def read(self, headers: Headers, scope: Mapping[str, Any]) -> OriginalRequest: ...


class _HeaderReader:
    """nginx and Traefik: the original request travels in headers of a subrequest to /auth."""

    def __init__(self, name: str, method: str, uri: str, *, foreign: tuple[str, str]) -> None:
        self.name = name
        self._method = method
        self._uri = uri
        self._foreign_method, self._foreign_uri = foreign

    def read(self, headers: Headers, scope: Mapping[str, Any]) -> OriginalRequest:
        target = _required(headers, self._uri, "missing_original_uri")
        method = _required(headers, self._method, "missing_original_method")
        host = _required(headers, "X-Forwarded-Host", "missing_original_host")
        scheme = _one(headers, "X-Forwarded-Proto")
        _no_conflict(headers, {self._foreign_uri: target, self._foreign_method: method})
        return _checked(method, scheme, host, target)


class _EnvoyReader:
    """Envoy ``ext_authz``: the subrequest is the original request, its path after a prefix."""

    name = "envoy"

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def read(self, headers: Headers, scope: Mapping[str, Any]) -> OriginalRequest:
        raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        target = raw.decode("latin-1")[len(self.prefix) :] or "/"
        query: bytes = scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")
        method = str(scope["method"])
        host = _required(headers, "Host", "missing_original_host")
        scheme = _one(headers, "X-Forwarded-Proto")
        _no_conflict(
            headers,
            {
                "X-Original-URI": target,
                "X-Forwarded-Uri": target,
                "X-Original-Method": method,
                "X-Forwarded-Method": method,
                "X-Forwarded-Host": host,
            },
        )
        return _checked(method, scheme, host, target)


GATEWAYS = ("nginx", "traefik", "envoy")


def reader_for(gateway: str, *, envoy_prefix: str = "/envoy") -> Reader:
    """The reader of ``gateway`` (one of :data:`GATEWAYS`)."""
    nginx = ("X-Original-Method", "X-Original-URI")
    traefik = ("X-Forwarded-Method", "X-Forwarded-Uri")
    if gateway == "nginx":
        return _HeaderReader("nginx", *nginx, foreign=traefik)
    if gateway == "traefik":
        return _HeaderReader("traefik", *traefik, foreign=nginx)
    if gateway == "envoy":
        return _EnvoyReader(envoy_prefix)
    raise ValueError(f"unknown gateway {gateway!r}")
