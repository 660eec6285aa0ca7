"""Where an issuer's keys come from: the interface the validator asks, and the static source."""

from __future__ import annotations

from typing import Protocol

from .._algorithms import Verifier
from ..errors import KeyNotFound
from ._set import KeySet, VerificationKey

__all__ = ["KeyMatch", "KeySource", "StaticKeySource", "key_not_found"]

KeyMatch = tuple[VerificationKey, Verifier]


def key_not_found() -> KeyNotFound:
    """The error for a token whose key is not among the usable keys."""
    return KeyNotFound("No usable key matches the access token", reason="unknown_key")


class KeySource(Protocol):
    """Answers "which key verifies a token with this ``kid`` and ``alg``?" for one issuer.

    ``key_for`` and ``akey_for`` share every decision; they differ only in how they wait for
    IO. Both raise ``KeyNotFound`` for an unknown key and ``KeysUnavailable`` when no key
    material can be had at all.
    """

    def key_for(self, kid: str | None, alg: str, now: float) -> KeyMatch: ...

    async def akey_for(self, kid: str | None, alg: str, now: float) -> KeyMatch: ...

    def current_keys(self) -> KeySet | None: ...

    def warm_up(self) -> None: ...

    async def awarm_up(self) -> None: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


class StaticKeySource:
    """Keys fixed at start-up (a JWK Set dict or file, or a shared secret); never any IO."""

    def __init__(self, key_set: KeySet) -> None:
        self._key_set = key_set

    def key_for(self, kid: str | None, alg: str, now: float) -> KeyMatch:
        """The key for ``kid`` and ``alg``, or ``KeyNotFound``."""
        found = self._key_set.select(kid, alg)
        if found is None:
            raise key_not_found()
        return found

    async def akey_for(self, kid: str | None, alg: str, now: float) -> KeyMatch:
        """Same as ``key_for``: a static source never waits."""
        return self.key_for(kid, alg, now)

    def current_keys(self) -> KeySet:
        """The loaded key set."""
        return self._key_set

    def warm_up(self) -> None:
        """Nothing to do: the keys were loaded at construction."""

    async def awarm_up(self) -> None:
        """Nothing to do: the keys were loaded at construction."""

    def close(self) -> None:
        """Nothing to release."""

    async def aclose(self) -> None:
        """Nothing to release."""
