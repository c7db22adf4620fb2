"""Idempotency keys: the same queuing request sent twice is one task.

A caller (the client library does it for every call) sends ``Idempotency-Key``; the key is
recorded with the task in the transaction that creates it, under the API key that sent it. Sent
again within the window with the same request, the first task answers; with a different request
the key is refused, since silently returning a task for something else would be worse. Two
identical requests racing each other meet at the table's primary key: one commits, the other
finds the winner.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from gateway.models import IdempotencyKey, Task
from prs_shared.db.engine import SessionFactory

WINDOW = timedelta(hours=24)
HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class EarlierTask:
    fingerprint: str
    task_id: str
    status: str
    queue: str


def fingerprint(**request: Any) -> str:
    """What the request asked for, hashed: equal requests have equal fingerprints."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_row(scope: str, key: str, fingerprint_: str, task_id: str, now: datetime) -> dict[str, Any]:
    return {
        "scope": scope,
        "key": key,
        "fingerprint": fingerprint_,
        "task_id": task_id,
        "created_at": now,
    }


async def find(sessions: SessionFactory, scope: str, key: str, now: datetime) -> EarlierTask | None:
    """The task an earlier request with this key created, if the key is still in its window.

    A key past the window (or whose task retention has removed) is forgotten here, so the
    caller's new request can take it.
    """
    async with sessions() as session, session.begin():
        row = (
            await session.execute(
                select(IdempotencyKey.fingerprint, IdempotencyKey.created_at, Task)
                .outerjoin(Task, Task.task_id == IdempotencyKey.task_id)
                .where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
            )
        ).one_or_none()
        if row is None:
            return None
        fingerprint_, created_at, task = row
        if task is not None and created_at > now - WINDOW:
            return EarlierTask(fingerprint_, task.task_id, task.status, task.queue)
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.scope == scope,
                IdempotencyKey.key == key,
                IdempotencyKey.created_at == created_at,
            )
        )
        return None
