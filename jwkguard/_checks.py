"""Checks shared by configuration code: lists of names and mappings of options.

Each raises :class:`~jwkguard.errors.ConfigurationError` naming the setting, so a bad value
fails when the configuration is built, not on the first request.
"""

from __future__ import annotations

import difflib
import math
import reprlib
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypedDict, Unpack, cast

from .errors import ConfigurationError

__all__ = [
    "ListOptions",
    "is_name",
    "list_of",
    "lowered_options",
    "positive_seconds",
    "string_list",
]


def list_of(
    value: object,
    what: str,
    *,
    each: Callable[[Any], object],
    described: str,
    allow_empty: bool = True,
    container: type | tuple[type, ...] = Iterable,
) -> tuple[Any, ...]:
    """``value``'s items as a tuple, each accepted by ``each``; one bare string is refused.

    Args:
        value: The setting as given.
        what: The setting's name, as the error message shows it.
        each: True for an acceptable item.
        described: The items as the error message names them ("``what`` must be a list of
            ..."), e.g. ``"paths such as '/mcp'"``.
        allow_empty: Accept an empty list.
        container: The types ``value`` may have (any iterable by default; strings never).

    Raises:
        ConfigurationError: One string (or bytes) instead of a list, another type than
            ``container``, an item ``each`` refuses, or an empty list unless ``allow_empty``.
    """
    if isinstance(value, str | bytes):
        raise ConfigurationError(f"{what} must be a list of {described}, not one string")
    if not isinstance(value, container):
        raise ConfigurationError(f"{what} must be a list of {described}")
    items = tuple(cast(Iterable[Any], value))
    expected = f"a list of {described}" if allow_empty else f"a non-empty list of {described}"
    if not items:
        if not allow_empty:
            raise ConfigurationError(f"{what} must be {expected}")
        return items
    for item in items:
        if not each(item):
            raise ConfigurationError(f"{what} must be {expected} (got {reprlib.repr(item)})")
    return items


class ListOptions(TypedDict, total=False):
    """How :func:`string_list` reads a list, as for :func:`list_of`.

    Attributes:
        allow_empty: Accept an empty list (default True).
        container: The types the list may have (any iterable by default; strings never).
    """

    allow_empty: bool
    container: type | tuple[type, ...]


def string_list(
    value: object, what: str, *, unique: bool = False, **options: Unpack[ListOptions]
) -> tuple[str, ...]:
    """``value`` as a tuple of non-empty strings (names, URLs, ...); one bare string is refused.

    Args:
        value: The setting as given.
        what: The setting's name, as the error message shows it.
        unique: Drop repeated items, keeping the first of each.
        **options: ``allow_empty`` and ``container`` (:class:`ListOptions`).

    Raises:
        ConfigurationError: One string instead of a list, another type than ``container``,
            an item that is not a non-empty string, or an empty list unless ``allow_empty``.
    """
    # Not "a non-empty list of non-empty strings": the error quotes the item that is wrong.
    described = "non-empty strings" if options.get("allow_empty", True) else "strings"
    items: tuple[str, ...] = list_of(value, what, each=is_name, described=described, **options)
    return tuple(dict.fromkeys(items)) if unique else items


def lowered_options(
    value: Mapping[Any, Any], where: str, known: Collection[str] | None = None
) -> dict[str, Any]:
    """A mapping of options keyed by their lower-case names (settings spell them in capitals).

    Args:
        value: The options as given.
        where: The setting that holds them, as the error message shows it.
        known: The lower-case option names accepted; any other is refused, with the closest
            known name as a hint. None accepts every name.

    Raises:
        ConfigurationError: An option name that is not a string, or not one of ``known``.
    """
    if not all(isinstance(key, str) for key in value):
        raise ConfigurationError(f"{where}: option names must be strings")
    options = {key.lower(): item for key, item in value.items()}
    unknown = [] if known is None else sorted(set(options) - set(known))
    if unknown:
        described = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(known or ()), n=1)
            hint = f" (did you mean {close[0].upper()}?)" if close else ""
            described.append(f"{name.upper()}{hint}")
        raise ConfigurationError(f"{where}: unknown options: {', '.join(described)}")
    return options


def is_name(item: object) -> bool:
    """True for a non-empty string."""
    return isinstance(item, str) and item != ""


def positive_seconds(value: object, what: str) -> float:
    """``value`` as a float: a finite number of seconds above zero (not a bool, not NaN).

    Raises:
        ConfigurationError: Anything else, naming ``what``.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(f"{what} must be a positive number of seconds")
    return float(value)
