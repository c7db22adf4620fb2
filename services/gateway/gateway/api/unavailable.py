"""Telling a server that is away (the database, mostly) from a fault of the gateway's own.

A request that needs the database while it is unreachable, restarting or out of connections
is answered 503 with Retry-After: the client's retry will likely work, and nothing was
changed. Anything else unexpected stays a 500.
"""

from __future__ import annotations

import socket
from types import TracebackType

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

RETRY_AFTER_SECONDS = 5

# SQLSTATE classes of a server that is away rather than a statement that is wrong:
# 08 connection exception, 53 insufficient resources (too many connections), 57 operator
# intervention (shutdown, cannot connect now).
_AWAY_CLASSES = ("08", "53", "57")

_DATABASE_MODULES = ("asyncpg", "sqlalchemy", "aiosqlite")


def unavailable(exc: BaseException) -> str | None:
    """``"database"`` or ``"server"`` when ``exc`` says something the gateway depends on is
    away; None when it is a fault to log and answer 500."""
    if isinstance(exc, PoolTimeout):
        return "database"
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or _sqlstate(exc.orig)[:2] in _AWAY_CLASSES:
            return "database"
        cause = exc.orig.__cause__ if exc.orig is not None else None
        if cause is not None and _sqlstate(cause)[:2] in _AWAY_CLASSES:
            return "database"
        return None
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        # asyncpg's connect raises the socket's own error, unwrapped.
        return "database" if _raised_in(exc.__traceback__, _DATABASE_MODULES) else "server"
    return None


def _sqlstate(error: BaseException | None) -> str:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return str(state) if state else ""


def _raised_in(tb: TracebackType | None, modules: tuple[str, ...]) -> bool:
    while tb is not None:
        name = str(tb.tb_frame.f_globals.get("__name__", ""))
        if name.split(".", 1)[0] in modules:
            return True
        tb = tb.tb_next
    return False
