"""Lazy public namespaces (PEP 562): a name loads its module on first use.

``import jwkguard`` must stay cheaper than ``import jwt``, so a namespace lists where each
of its names lives and imports that module only when the name is first read. Code that needs
an optional dependency says which extra to install, in the one wording of :func:`install_hint`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["install_hint", "lazy_namespace", "missing_extra", "require_modules"]


def lazy_namespace(
    namespace: dict[str, Any],
    homes: Mapping[str, str],
    moved: Mapping[str, str] | None = None,
    retired: Mapping[str, str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a module's ``__getattr__`` and ``__dir__`` for the names in ``homes``.

    ``homes`` maps a public name to the module (relative to the namespace) that defines it,
    or to ``"module:attribute"`` where the public name is an alias.
    ``moved`` maps a name that left this namespace to its new public module, or to
    ``"module:new_name"`` when it was renamed: reading it still works for one release, with a
    ``DeprecationWarning`` that names the new import.
    ``retired`` maps a name that left the public API (an internal) to the module, relative to
    the namespace, that still defines it: it also works for one release, with a warning.
    """
    package = namespace["__name__"]
    moved = moved or {}
    retired = retired or {}

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is not None:
            module, _, attribute = home.partition(":")
            value = getattr(import_module(module, package), attribute or name)
            namespace[name] = value  # later reads skip this function
            return value
        if name in moved:
            new_home, _, new_name = moved[name].partition(":")
            new_name = new_name or name
            warnings.warn(
                f"{package}.{name} moved to {new_home}.{new_name}; "
                f"import it as `from {new_home} import {new_name}` (the old path goes in 0.3)",
                DeprecationWarning,
                stacklevel=2,
            )
            return getattr(import_module(new_home), new_name)
        internal = retired.get(name)
        if internal is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        warnings.warn(
            f"{package}.{name} is internal and leaves the public API in 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(import_module(internal, package), name)

    def __dir__() -> list[str]:
        return sorted({*namespace, *namespace.get("__all__", ())})

    return __getattr__, __dir__


def install_hint(what: str, needs: str, extra: str) -> str:
    """The one line that says ``what`` needs ``needs`` and which jwkguard extra brings it."""
    return f"{what} needs {needs}: pip install 'jwkguard[{extra}]'"


def missing_extra(what: str, needs: str, extra: str) -> ImportError:
    """The ``ImportError`` to raise when ``what`` is used without its optional dependency."""
    return ImportError(install_hint(what, needs, extra))


def require_modules(what: str, needs: str, extra: str, *modules: str) -> None:
    """Import ``modules`` now, or fail with ``missing_extra(what, needs, extra)``: an adapter
    without its framework says which extra to install, in one line."""
    try:
        for module in modules:
            import_module(module)
    except ImportError as exc:
        raise missing_extra(what, needs, extra) from exc
