"""Telling a server that is away (the database, mostly) from a fault of the gateway's own.

A request that needs the database while it is unreachable, restarting or out of connections
is answered 503 with Retry-After: the client's retry will likely work, and nothing was
changed. Anything else unexpected stays a 500.
"""

from __future__ import annotations

from prs_shared.db.outage import database_unavailable, is_connection_error

RETRY_AFTER_SECONDS = 5


def unavailable(exc: BaseException) -> str | None:
    """``"database"`` or ``"server"`` when ``exc`` says something the gateway depends on is
    away; None when it is a fault to log and answer 500."""
    if database_unavailable(exc):
        return "database"
    if is_connection_error(exc):
        return "server"
    return None
