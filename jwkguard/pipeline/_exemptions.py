"""Which requests an adapter lets through without a token: one syntax in every adapter.

``exempt_paths`` entries are exact paths, or subtrees when they end in ``/``: ``"/health"``
exempts ``/health`` only (never ``/health/x`` or ``/healthz``); ``"/public/"`` exempts what
lies below (``/public/info``, not ``/public``). Django's ``"/static/*"`` is accepted as the
spelling of ``"/static/"``; a ``*`` anywhere else is refused, since ``"/api*"`` would also
exempt ``/apix``. ``"/"`` alone is refused (it would exempt everything).

A path is exempt only in its canonical spelling: one with a dot segment, a ``;`` parameter,
a backslash, an empty segment or a control character is never exempt, so that
``/health/../admin`` or ``/public/;/../admin`` cannot reach a protected route through an
exemption, whatever the framework behind does with such a path (it then needs a token).

``exempt_methods`` default to ``OPTIONS`` (CORS preflights carry no credentials, Fetch
standard section 4.8); pass ``()`` to protect them too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar

from .._checks import list_of
from ..errors import ConfigurationError

__all__ = ["DEFAULT_EXEMPT_METHODS", "Exemptions"]

DEFAULT_EXEMPT_METHODS: tuple[str, ...] = ("OPTIONS",)

_NOT_CANONICAL = re.compile(r"//|/\.\.?(?:/|$)|[;\\\x00-\x1f\x7f]")


class Exemptions:
    """Decides whether a request is served without a token.

    Args:
        paths: Exact paths, and subtrees (ending in ``/``), served without a token.
        methods: Methods served without a token (default ``OPTIONS``).
    """

    __slots__ = ("_exact", "_methods", "_prefixes", "methods", "paths")

    paths: tuple[str, ...]

    DEFAULT_METHODS: ClassVar[tuple[str, ...]] = DEFAULT_EXEMPT_METHODS
    """Methods exempt unless told otherwise: ``OPTIONS`` (CORS preflight)."""

    def __init__(
        self, paths: Iterable[str] = (), methods: Iterable[str] = DEFAULT_EXEMPT_METHODS
    ) -> None:
        paths = list_of(paths, "exempt_paths", each=_is_str, described="strings")
        method_names = list_of(methods, "exempt_methods", each=_is_method, described="method names")
        exact: list[str] = []
        prefixes: list[str] = []
        for path in paths:
            if not path.startswith("/"):
                raise ConfigurationError(f"exempt path {path!r} must be a path starting with '/'")
            entry = path[:-1] if path.endswith("/*") else path
            if "*" in entry:
                raise ConfigurationError(
                    f"exempt path {path!r}: only a final '/*' (a subtree) is allowed"
                )
            trimmed = entry.rstrip("/")
            if not trimmed or _NOT_CANONICAL.search(trimmed):
                raise ConfigurationError(f"exempt path {path!r} must be a canonical path below '/'")
            if entry.endswith("/"):
                prefixes.append(trimmed + "/")
            else:
                exact.append(trimmed)
        self.paths = paths
        self.methods = frozenset(method.strip().upper() for method in method_names)
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)
        self._methods = self.methods

    def __call__(self, method: str, path: str) -> bool:
        """True when ``method path`` is served without a token."""
        return method in self._methods or self.path_exempt(path)

    def path_exempt(self, path: str) -> bool:
        """True when ``path`` is one of the exempt paths, spelled canonically."""
        if path in self._exact:
            return True
        return path.startswith(self._prefixes) and not _NOT_CANONICAL.search(path)

    def __bool__(self) -> bool:
        return bool(self._exact or self._prefixes or self._methods)


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_method(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""
