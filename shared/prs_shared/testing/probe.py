"""A probe service for the runtime's own tests: handlers whose effects and failures a test steers.

``test.effect`` records one row per effect in ``effects``; counting rows by key tells whether a
message had its effect exactly once.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from pydantic import Field
from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from prs_shared.diagnostics import base_handlers
from prs_shared.messaging import catalog
from prs_shared.messaging.errors import PermanentError, TransientError
from prs_shared.messaging.handlers import Handler, HandlerContext, HandlerRegistry
from prs_shared.messaging.messages import Message

MIGRATIONS = Path(__file__).parent / "migrations"

probe_metadata = MetaData()
effects = Table(
    "effects",
    probe_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),
    Column("message_id", String(36), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("worker", String(200), nullable=False),
    # No unique key on purpose: only the inbox stands between a redelivery and a second row.
)


class Effect(Message):
    key: str = Field(max_length=200)
    sleep_ms: int = Field(default=0, ge=0, le=600_000)
    fail_times: int = Field(default=0, ge=0, description="Fail transiently on the first N tries.")
    permanent: bool = Field(default=False, description="Fail permanently.")
    emit: bool = Field(default=False, description="Also emit test.effect_recorded via outbox.")
    result_bytes: int = Field(
        default=0, ge=0, le=8 * 1024 * 1024, description="Pad the result to about this size."
    )
    exit_process: bool = Field(
        default=False, description="Kill the worker process, as an OOM or a segfault would."
    )


class EffectRecorded(Message):
    key: str


EFFECT = catalog.command("test.effect", Effect, "workflow", "Probe: record an effect row.")
EFFECT_RECORDED = catalog.event("test.effect_recorded", EffectRecorded, "Probe: effect recorded.")


async def handle_effect(payload: Effect, ctx: HandlerContext, deps: None) -> dict[str, Any]:
    if payload.sleep_ms:
        await asyncio.sleep(payload.sleep_ms / 1000)
    if payload.exit_process:
        os._exit(70)
    if payload.permanent:
        raise PermanentError(f"probe {payload.key} refuses permanently")
    if ctx.attempt <= payload.fail_times:
        raise TransientError(f"probe {payload.key} fails attempt {ctx.attempt}")
    await ctx.session.execute(
        insert(effects).values(
            key=payload.key,
            message_id=str(ctx.envelope.id),
            attempt=ctx.attempt,
            worker=ctx.worker,
        )
    )
    if payload.emit:
        ctx.caused(EFFECT_RECORDED.type, EffectRecorded(key=payload.key))
    result: dict[str, Any] = {"key": payload.key, "worker": ctx.worker, "attempt": ctx.attempt}
    if payload.result_bytes:
        result["padding"] = "x" * payload.result_bytes
    return result


def probe_registry() -> HandlerRegistry:
    return HandlerRegistry([*base_handlers(), Handler(EFFECT, handle_effect, None)])
