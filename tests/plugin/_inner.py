"""The warning filters of the inner pytest runs: errors, as in our own suite.

Starlette's TestClient before 1.8 uses an anyio alias that anyio 4.16 deprecates: our own
suite ignores that one warning from ``starlette.testclient`` (pyproject.toml), and so do the
inner runs, which the lowest-direct run (``make test-lowest``) reaches with an old Starlette.
"""

STRICT_WARNINGS = (
    "-W",
    "error",
    "-W",
    "ignore:The anyio.abc.BlockingPortal alias is deprecated:DeprecationWarning",
)
