"""Dead-letter administration: list, inspect, replay one or all, purge (admins).

A key scoped to an organization sees and acts on that organization's dead letters only (the
organization of the dead message's envelope); another organization's are 404 to it, exactly
like unknown ones.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import LargeBinary, delete, func, select

from gateway.api.deps import CurrentPrincipal, SessionDep, StateDep, require, visible
from gateway.api.problems import Problem
from gateway.auth import Principal, Role
from gateway.dead_letters import stage_replay
from gateway.models import DeadLetter

router = APIRouter(prefix="/api/dead-letters", tags=["dead letters"])

OPERATORS = require(Role.OPERATOR)
PREVIEW_BYTES = 2048
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such dead letter."}}


class DeadLetterSummary(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b6c8f0e-1d2a-4c1b-9a51-3f8e2a7c9d10",
                    "queue": "workflow",
                    "reason": "retries_exhausted",
                    "attempts": 4,
                    "last_error": "TransientError: database unavailable",
                    "message_id": "2f0d4b6e-5c3a-4e8f-9b1d-7a6c5e4d3b2a",
                    "message_type": "deal.process_workflow",
                    "task_id": "6f1c1c2e-8a9e-4d5b-9f6e-0c8a3f1d2b7a",
                    "organization_id": "42",
                    "dead_lettered_at": "2026-11-28T12:00:00Z",
                    "replayed_at": None,
                    "body_bytes": 412,
                    "body_preview": '{"id": "2f0d4b6e-5c3a-4e8f-9b1d-7a6c5e4d3b2a", ...}',
                    "body_truncated": False,
                }
            ]
        }
    )

    id: str
    queue: str
    reason: str
    attempts: int
    last_error: str | None
    message_id: str | None
    message_type: str | None
    task_id: str | None
    organization_id: str | None
    dead_lettered_at: datetime
    replayed_at: datetime | None
    body_bytes: int = Field(description="Size of the message body.")
    body_preview: str = Field(
        description=f"The first {PREVIEW_BYTES} bytes of the body as text; the whole body is in "
        "the single dead letter's view."
    )
    body_truncated: bool = Field(description="True when the preview is not the whole body.")


class DeadLetterDetail(DeadLetterSummary):
    headers: dict[str, Any]
    body: Any = Field(description="The message body: JSON when it parses, else text.")


class DeadLetterPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [], "total": 0, "by_queue": {"workflow": 2}}]}
    )

    items: list[DeadLetterSummary]
    total: int
    by_queue: dict[str, int] = Field(description="Not yet replayed, per queue.")


class ReplayResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"replayed": 1}]})

    replayed: int


_SUMMARY_COLUMNS = (
    DeadLetter.id,
    DeadLetter.queue,
    DeadLetter.reason,
    DeadLetter.attempts,
    DeadLetter.last_error,
    DeadLetter.message_id,
    DeadLetter.message_type,
    DeadLetter.task_id,
    DeadLetter.organization_id,
    DeadLetter.dead_lettered_at,
    DeadLetter.replayed_at,
)
# A list never loads whole bodies (one can be tens of megabytes): the database cuts the preview
# and measures the size. substr and length count bytes on a BLOB (SQLite) and a bytea
# (PostgreSQL) alike.
_PREVIEW = func.substr(DeadLetter.body, 1, PREVIEW_BYTES, type_=LargeBinary).label("preview")
_SIZE = func.length(DeadLetter.body).label("size")


def _summary(row: Any, preview: bytes, size: int) -> DeadLetterSummary:
    """A summary from a dead letter's columns (a row or a ``_SUMMARY_COLUMNS`` result)."""
    return DeadLetterSummary(
        id=row.id,
        queue=row.queue,
        reason=row.reason,
        attempts=row.attempts,
        last_error=row.last_error,
        message_id=row.message_id,
        message_type=row.message_type,
        task_id=row.task_id,
        organization_id=row.organization_id,
        dead_lettered_at=row.dead_lettered_at,
        replayed_at=row.replayed_at,
        body_bytes=size,
        body_preview=bytes(preview[:PREVIEW_BYTES]).decode("utf-8", "replace"),
        body_truncated=size > PREVIEW_BYTES,
    )


def _scope(principal: Principal) -> list[Any]:
    if principal.organization_id is None:
        return []
    return [DeadLetter.organization_id == principal.organization_id]


@router.get("/", dependencies=[OPERATORS])
async def list_dead_letters(
    session: SessionDep,
    principal: CurrentPrincipal,
    queue: Annotated[str | None, Query(max_length=200)] = None,
    reason: Annotated[str | None, Query(max_length=100)] = None,
    replayed: Annotated[
        bool | None, Query(description="Filter on whether it was replayed.")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DeadLetterPage:
    """Dead letters with their reason and attempts, newest first, and counts per queue."""
    conditions = _scope(principal)
    if queue:
        conditions.append(DeadLetter.queue == queue)
    if reason:
        conditions.append(DeadLetter.reason == reason)
    if replayed is not None:
        conditions.append(
            DeadLetter.replayed_at.is_not(None) if replayed else DeadLetter.replayed_at.is_(None)
        )
    total = await session.scalar(select(func.count()).select_from(DeadLetter).where(*conditions))
    rows = await session.execute(
        select(*_SUMMARY_COLUMNS, _PREVIEW, _SIZE)
        .where(*conditions)
        .order_by(DeadLetter.dead_lettered_at.desc(), DeadLetter.id)
        .limit(limit)
        .offset(offset)
    )
    by_queue = {
        r.queue: int(r.n)
        for r in await session.execute(
            select(DeadLetter.queue, func.count().label("n"))
            .where(
                *_scope(principal),
                *([DeadLetter.queue == queue] if queue else []),
                DeadLetter.replayed_at.is_(None),
            )
            .group_by(DeadLetter.queue)
        )
    }
    return DeadLetterPage(
        items=[_summary(r, r.preview or b"", int(r.size or 0)) for r in rows],
        total=int(total or 0),
        by_queue=by_queue,
    )


async def _get(session: SessionDep, principal: Principal, dead_letter_id: str) -> DeadLetter:
    row = await session.get(DeadLetter, dead_letter_id)
    if row is None or not visible(principal, row.organization_id):
        raise Problem(404, "Dead letter not found", f"no dead letter {dead_letter_id}")
    return row


@router.get("/{dead_letter_id}", responses=_NOT_FOUND, dependencies=[OPERATORS])
async def inspect_dead_letter(
    dead_letter_id: str, session: SessionDep, principal: CurrentPrincipal
) -> DeadLetterDetail:
    """One dead letter with its headers and whole body."""
    row = await _get(session, principal, dead_letter_id)
    try:
        body: Any = json.loads(row.body)
    except ValueError:
        body = row.body.decode("utf-8", "replace")
    summary = _summary(row, row.body, len(row.body))
    return DeadLetterDetail(**summary.model_dump(), headers=row.headers, body=body)


@router.post("/{dead_letter_id}/replay", responses=_NOT_FOUND, dependencies=[OPERATORS])
async def replay_dead_letter(
    dead_letter_id: str, session: SessionDep, principal: CurrentPrincipal, state: StateDep
) -> ReplayResult:
    """Send one dead letter back to its queue (attempts start again at 1)."""
    async with session.begin():
        row = await _get(session, principal, dead_letter_id)
        if row.replayed_at is not None:
            raise Problem(409, "Already replayed", f"replayed at {row.replayed_at.isoformat()}")
        await stage_replay(session, row, caller=principal.organization_id, by=principal.name)
    state.host.relay.notify()
    return ReplayResult(replayed=1)


@router.post("/replay", dependencies=[OPERATORS])
async def replay_all(
    session: SessionDep,
    principal: CurrentPrincipal,
    state: StateDep,
    queue: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> ReplayResult:
    """Send every not-yet-replayed dead letter of a queue back to it (up to ``limit``)."""
    async with session.begin():
        rows = (
            (
                await session.execute(
                    select(DeadLetter)
                    .where(
                        *_scope(principal),
                        DeadLetter.queue == queue,
                        DeadLetter.replayed_at.is_(None),
                    )
                    .order_by(DeadLetter.dead_lettered_at)
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
        for row in rows:
            await stage_replay(session, row, caller=principal.organization_id, by=principal.name)
    state.host.relay.notify()
    return ReplayResult(replayed=len(rows))


class PurgeResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"purged": 3}]})

    purged: int


@router.delete("/", dependencies=[require(Role.ADMIN)])
async def purge_dead_letters(
    session: SessionDep,
    principal: CurrentPrincipal,
    queue: Annotated[str | None, Query(max_length=200)] = None,
) -> PurgeResult:
    """Delete dead letters for good — of one queue, or all (admins only)."""
    conditions = _scope(principal)
    if queue:
        conditions.append(DeadLetter.queue == queue)
    async with session.begin():
        result = await session.execute(delete(DeadLetter).where(*conditions))
    return PurgeResult(purged=int(result.rowcount or 0))  # type: ignore[attr-defined]
