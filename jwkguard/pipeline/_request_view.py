"""A framework-neutral view of the request the pipeline judges.

Adapters translate their framework's request into a :class:`RequestView` and nothing else:
the view reads headers lazily, so a request costs only the few look-ups the pipeline makes
(``Authorization``, and ``DPoP`` or a certificate header only for bound tokens).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from ..errors import InvalidRequest

__all__ = [
    "ASGIHeaders",
    "EnvironHeaders",
    "HeaderReader",
    "IndexedHeaders",
    "RequestView",
    "asgi_url",
    "environ_url",
    "view_from_asgi",
    "view_from_environ",
]


_PATH_SAFE = "/:@!$&'()*+,;=-._~"

# RFC 9110 section 7.2 ``uri-host [ ":" port ]``: a name or an IP literal, no userinfo, path,
# query or fragment. Anything else would reshape the URL a DPoP ``htu`` is compared with.
HOST = re.compile(
    r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?"
)


def checked_host(values: Sequence[str]) -> str:
    """The one ``Host`` of a request (``""`` without one), or ``InvalidRequest`` (400).

    RFC 9112 section 3.2: several Host lines, or one that is not ``host[:port]``, make a bad
    request; the URL is never built from the first of several or from a smuggled path.
    """
    if len(values) > 1:
        raise InvalidRequest("The request has several Host headers", reason="bad_host")
    host = values[0] if values else ""
    if host and not HOST.fullmatch(host):
        raise InvalidRequest("The Host header is not a host name", reason="bad_host")
    return host


class HeaderReader(Protocol):
    """Every value of a header, by lower-case name."""

    def getlist(self, name: str) -> Sequence[str]:
        """The values of header ``name`` (lower-case), in order; empty if absent."""
        ...


class ASGIHeaders:
    """An ASGI scope's raw header list, read as latin-1 (RFC 9110 section 5.5)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def getlist(self, name: str) -> list[str]:
        wanted = name.encode("latin-1")
        return [value.decode("latin-1") for key, value in self._raw if key == wanted]


class IndexedHeaders:
    """An ASGI header list indexed in one pass, for callers that read many headers.

    A gateway's subrequest is read header by header (the original URI, method, host, the
    token, a proof): one pass that decodes each name once beats a scan per header.
    """

    __slots__ = ("_index",)

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        index: dict[bytes, list[str]] = {}
        for key, value in raw:
            found = index.get(key)
            if found is None:
                index[key] = [value.decode("latin-1")]
            else:
                found.append(value.decode("latin-1"))
        self._index = index

    def getlist(self, name: str) -> list[str]:
        return list(self._index.get(name.lower().encode("latin-1"), ()))


class EnvironHeaders:
    """A WSGI environ's (or Django ``META``'s) ``HTTP_*`` keys.

    WSGI keeps one value per header: servers join repeated headers with ``","``. A joined
    ``Authorization`` is split again before each ``Bearer`` or ``DPoP`` credential after a
    comma (a token never holds one), so that ``Basic ..., Bearer ...`` or an empty header
    then a token is two headers, refused as under ASGI, not one of another scheme; joined
    ``DPoP`` proofs are split on commas, which a compact JWS never contains, so that two
    proofs stay two.
    """

    __slots__ = ("_environ",)

    _SPLIT = frozenset({"dpop"})

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._environ = environ

    def getlist(self, name: str) -> list[str]:
        value = self._environ.get("HTTP_" + name.upper().replace("-", "_"))
        if value is None:
            return []
        if name in self._SPLIT:
            return [part.strip(" \t") for part in str(value).split(",")]
        if name == "authorization" and "," in value:
            return _JOINED_CREDENTIALS.split(str(value))
        return [str(value)]


# A comma that starts another Bearer or DPoP credential in a joined Authorization header.
_JOINED_CREDENTIALS = re.compile(r"[ \t]*,[ \t]*(?=(?:bearer|dpop)(?:[ \t]|$))", re.IGNORECASE)


def _no_url() -> str:
    return ""


@dataclass(slots=True, eq=False, repr=False)
class RequestView:
    """What the pipeline knows of a request (read-only by convention).

    A slotted dataclass, not a frozen one: one is built per request, and a frozen
    dataclass's ``__init__`` costs several times as much.

    Attributes:
        method: The HTTP method, upper-case (``GET`` for a WebSocket handshake).
        headers: The request headers.
        query: The raw query string (without ``?``).
        url: Builds the full URL as the client addressed it (the DPoP ``htu``); only called
            for DPoP-bound tokens.
        client: The client's address, if known (reuse alerts count it); behind a proxy that
            the framework trusts, the address the proxy reported.
        peer: The address of the connection's direct peer, when it differs from ``client``;
            only the direct peer decides whether a proxy's certificate header is believed.
        certificate: The client certificate of this server's own TLS connection, if any.
        websocket: True for a WebSocket handshake.
        subprotocols: The WebSocket subprotocols the client offered.
    """

    method: str
    headers: HeaderReader
    query: str = ""
    url: Callable[[], str] = _no_url
    client: str | None = None
    peer: str | None = None
    certificate: bytes | str | None = None
    websocket: bool = False
    subprotocols: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"RequestView(method={self.method!r}, client={self.client!r})"


def asgi_url(scope: Mapping[str, Any]) -> str:
    """The URL of an ASGI connection as the client addressed it (``Host`` header first).

    Raises:
        InvalidRequest: Several Host headers, or one that is not ``host[:port]``.
    """
    scheme = scope.get("scheme", "http")
    websocket = scope["type"] == "websocket"
    if websocket:
        scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    host = checked_host(
        [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == b"host"]
    )
    if not host:
        server = scope.get("server")
        if server:
            name, port = server[0], server[1]
            default = {"http": 80, "ws": 80, "https": 443, "wss": 443}.get(scheme)
            host = name if port == default or port is None else f"{name}:{port}"
    path = scope.get("root_path", "") + scope["path"]
    raw = scope.get("raw_path")
    if raw:
        path = raw.decode("latin-1")
        root = scope.get("root_path", "")
        if root and not path.startswith(root):
            path = root + path
    query = scope.get("query_string", b"")
    url = f"{scheme}://{host}{path}"
    return f"{url}?{query.decode('latin-1')}" if query else url


def view_from_asgi(scope: Mapping[str, Any]) -> RequestView:
    """The view of an ASGI ``http`` or ``websocket`` connection.

    The client certificate comes from the ASGI TLS extension where the server offers it.
    """
    websocket = scope["type"] == "websocket"
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or ()
    client = scope.get("client")
    return RequestView(
        method="GET" if websocket else scope["method"],
        headers=ASGIHeaders(scope["headers"]),
        query=scope.get("query_string", b"").decode("latin-1"),
        url=lambda: asgi_url(scope),
        client=client[0] if client else None,
        certificate=chain[0] if chain else None,
        websocket=websocket,
        subprotocols=tuple(scope.get("subprotocols") or ()),
    )


def environ_url(environ: Mapping[str, Any]) -> str:
    """The URL of a WSGI request (PEP 3333's reconstruction, ``Host`` header first).

    Raises:
        InvalidRequest: A Host header that is not ``host[:port]`` (servers join repeated
            ones with a comma, so several are refused too).
    """
    scheme = environ.get("wsgi.url_scheme", "http")
    given = environ.get("HTTP_HOST")
    host = checked_host([str(given)] if given is not None else [])
    if not host:
        host = environ.get("SERVER_NAME", "")
        port = str(environ.get("SERVER_PORT", ""))
        if port and port != {"http": "80", "https": "443"}.get(scheme):
            host = f"{host}:{port}"
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    # PATH_INFO holds the decoded bytes as latin-1: back to the percent-encoded form.
    url = f"{scheme}://{host}{quote(path.encode('latin-1'), safe=_PATH_SAFE)}"
    query = environ.get("QUERY_STRING", "")
    return f"{url}?{query}" if query else url


def view_from_environ(environ: Mapping[str, Any]) -> RequestView:
    """The view of a WSGI request (also Django's ``request.META``).

    The client certificate comes from ``SSL_CLIENT_CERT``, where WSGI servers (werkzeug,
    Apache mod_ssl) put a verified one. Behind werkzeug's ``ProxyFix`` the direct peer is
    the address ``ProxyFix`` replaced.
    """
    original = environ.get("werkzeug.proxy_fix.orig") or {}
    return RequestView(
        method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
        headers=EnvironHeaders(environ),
        query=environ.get("QUERY_STRING", ""),
        url=lambda: environ_url(environ),
        client=environ.get("REMOTE_ADDR"),
        peer=original.get("REMOTE_ADDR"),
        certificate=environ.get("SSL_CLIENT_CERT") or None,
    )
