"""Identity headers are data, not text: one reversible encoding for every claim header.

``X-Auth-Subject``, ``X-Auth-Scopes`` and each configured claim header carry claim values the
issuer chose, so they may hold anything: CR/LF, commas, spaces at the edges, non-Latin-1 text,
or text that already looks percent-encoded. Every one of them goes through :func:`encode_text`:

- the value is taken as UTF-8 (lone surrogates too, so encoding never fails);
- every byte outside the visible ASCII range ``!``..``~``, and ``%`` and ``,`` themselves, is
  written ``%XX`` (upper-case hex); everything else is written as it is.

So a header value is always visible ASCII with no spaces (a valid field value that no proxy
trims or folds), and :func:`decode_text` gives the claim back exactly: ``émile`` is
``%C3%A9mile`` while ``%C3%A9mile`` is ``%25C3%25A9mile``, ``" admin "`` is ``%20admin%20``.
Lists join their encoded items with ``,`` (claim headers) or a space (``X-Auth-Scopes``); as
neither separator survives inside an item, ``["users,admins"]`` (``users%2Cadmins``) and
``["users", "admins"]`` (``users,admins``) stay apart.

Values without a header form send no header: objects, null, empty strings, empty lists, lists
holding anything but non-empty strings and numbers, and values longer than 4096 characters once
encoded. Types are not marked: ``"1"``, ``1`` and ``["1"]`` all give ``1``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MAX_HEADER_VALUE",
    "decode_list",
    "decode_text",
    "encode_list",
    "encode_text",
    "header_value",
]

MAX_HEADER_VALUE = 4096

_SAFE = frozenset(range(0x21, 0x7F)) - {ord("%"), ord(",")}
_TABLE = tuple(chr(byte) if byte in _SAFE else f"%{byte:02X}" for byte in range(256))
_HEX = frozenset("0123456789ABCDEFabcdef")


def encode_text(text: str) -> str:
    """``text`` as a header value: visible ASCII without ``%``-ambiguity, commas or spaces."""
    return "".join(_TABLE[byte] for byte in text.encode("utf-8", "surrogatepass"))


def decode_text(value: str) -> str:
    """The text :func:`encode_text` encoded (for upstreams that read identity headers).

    Raises:
        ValueError: ``value`` is not something :func:`encode_text` writes.
    """
    out = bytearray()
    position = 0
    while position < len(value):
        char = value[position]
        if char == "%":
            escape = value[position + 1 : position + 3]
            if len(escape) != 2 or not set(escape) <= _HEX:
                raise ValueError("a bad percent escape")
            out.append(int(escape, 16))
            position += 3
            continue
        if ord(char) not in _SAFE:
            raise ValueError(f"an unencoded {char!r}")
        out.append(ord(char))
        position += 1
    try:
        return out.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise ValueError("the decoded bytes are not UTF-8") from None


def encode_list(items: list[str], separator: str = ",") -> str:
    """Encoded ``items`` joined by ``separator`` (``,`` or a space)."""
    return separator.join(encode_text(item) for item in items)


def decode_list(value: str, separator: str = ",") -> list[str]:
    """The items :func:`encode_list` joined (an empty value is an empty list)."""
    return [decode_text(item) for item in value.split(separator)] if value else []


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def header_value(value: Any) -> str | None:
    """A claim as a header value, or None when it has no header form (see the module)."""
    if isinstance(value, list):
        items = [_scalar(item) for item in value if not isinstance(item, bool)]
        if not value or len(items) != len(value) or any(item is None for item in items):
            return None
        text = encode_list([item for item in items if item is not None])
    else:
        scalar = _scalar(value)
        if scalar is None:
            return None
        text = encode_text(scalar)
    if len(text) > MAX_HEADER_VALUE:
        return None
    return text
