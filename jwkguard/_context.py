"""``with`` and ``async with`` for objects that own threads, sockets or clients.

One place for the ``__enter__``/``__exit__`` signatures: a class names what ending the block does
(``_exit``, ``_aexit``) and overrides ``__enter__`` only when entering must start something.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncContext", "SyncContext"]


class SyncContext:
    """``with obj:`` gives ``obj`` and calls ``obj._exit()`` when the block ends."""

    __slots__ = ()

    def _exit(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit()


class AsyncContext(SyncContext):
    """As :class:`SyncContext`, and ``async with obj:`` awaits ``obj._aexit()`` at the end."""

    __slots__ = ()

    async def _aexit(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._aexit()
