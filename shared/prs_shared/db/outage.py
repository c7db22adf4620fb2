"""Telling a database that is away (unreachable, restarting, out of connections) from a
statement that failed: the first is worth waiting out, the second is the caller's fault."""

from __future__ import annotations

import socket
from types import TracebackType

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATEs of a server that is away rather than a statement that is wrong: every connection
# exception (class 08), too many connections, and shutdown or start-up (admin, crash, cannot
# connect now). Not the rest of classes 53 and 57: out of memory or a cancelled statement
# (statement_timeout) is the statement's own doing, to be retried as any failure is.
_AWAY_CLASS = "08"
_AWAY_CODES = frozenset({"53300", "57P01", "57P02", "57P03"})

_DRIVER_MODULES = ("asyncpg", "sqlalchemy", "aiosqlite")


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now, as opposed to a fault."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or _away(exc.orig):
            return True
        return exc.orig is not None and _away(exc.orig.__cause__)
    if _away(exc):
        return True  # a driver's error that reached here unwrapped (asyncpg's at connect)
    if isinstance(exc, OSError | socket.gaierror):
        # asyncpg's connect raises the socket's own error (refused, unreachable), unwrapped.
        return raised_in(exc.__traceback__, _DRIVER_MODULES)
    return False


def _away(error: BaseException | None) -> bool:
    state = _sqlstate(error)
    return state[:2] == _AWAY_CLASS or state in _AWAY_CODES


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
