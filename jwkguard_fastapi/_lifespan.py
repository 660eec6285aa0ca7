"""A lifespan that warms the key cache at start-up and closes the HTTP clients at shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from jwkguard import JWKGuardError, Validator

__all__ = ["lifespan"]

logger = logging.getLogger("jwkguard.fastapi")

AppT = TypeVar("AppT")
Lifespan = Callable[[AppT], AbstractAsyncContextManager[Any]]


def lifespan(
    *validators: Validator,
    app_lifespan: Lifespan[AppT] | None = None,
    require_keys: bool = False,
) -> Lifespan[AppT]:
    """A lifespan for ``FastAPI(lifespan=...)`` or ``Starlette(lifespan=...)``.

    At start-up each validator fetches its issuers' keys (``awarm_up``), so the first
    requests do not wait for the JWKS; at shutdown each one closes its HTTP clients.

    Args:
        validators: The validators to warm up and close.
        app_lifespan: The application's own lifespan, run inside this one; its state (if
            it yields a mapping) is passed through.
        require_keys: Refuse to start when keys cannot be fetched. By default a failed
            warm-up is logged and the keys are fetched again on the first request.
    """

    @asynccontextmanager
    async def run(app: AppT) -> AsyncIterator[Any]:
        try:
            for validator in validators:
                try:
                    await validator.awarm_up()
                except JWKGuardError as exc:
                    if require_keys:
                        raise
                    logger.warning("jwkguard: key warm-up failed, will retry on demand: %s", exc)
            if app_lifespan is None:
                yield None
            else:
                async with app_lifespan(app) as state:
                    yield state
        finally:
            for validator in validators:
                await validator.aclose()

    return run
