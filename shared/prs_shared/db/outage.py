"""Telling a database that is away (unreachable, restarting, out of connections) from a
statement that failed: the first is worth waiting out, the second is the caller's fault."""

from __future__ import annotations

import socket
from types import TracebackType

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATE classes of a server that is away rather than a statement that is wrong:
# 08 connection exception, 53 insufficient resources (too many connections), 57 operator
# intervention (shutdown, cannot connect now).
_AWAY_CLASSES = ("08", "53", "57")

_DRIVER_MODULES = ("asyncpg", "sqlalchemy", "aiosqlite")


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now, as opposed to a fault."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or _sqlstate(exc.orig)[:2] in _AWAY_CLASSES:
            return True
        cause = exc.orig.__cause__ if exc.orig is not None else None
        return cause is not None and _sqlstate(cause)[:2] in _AWAY_CLASSES
    if is_connection_error(exc):
        # asyncpg's connect raises the socket's own error, unwrapped.
        return raised_in(exc.__traceback__, _DRIVER_MODULES)
    return False


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError | TimeoutError | socket.gaierror)


def raised_in(tb: TracebackType | None, modules: tuple[str, ...]) -> bool:
    """Whether a frame of ``tb`` belongs to one of ``modules`` (top-level package names)."""
    while tb is not None:
        name = str(tb.tb_frame.f_globals.get("__name__", ""))
        if name.split(".", 1)[0] in modules:
            return True
        tb = tb.tb_next
    return False


def _sqlstate(error: BaseException | None) -> str:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return str(state) if state else ""
