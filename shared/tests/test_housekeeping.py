"""The hourly housekeeping tick forgets processed message ids past their retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from prs_shared.db.engine import create_engine, session_factory
from prs_shared.db.migrations import upgrade
from prs_shared.db.tables import inbox
from prs_shared.diagnostics import INBOX_RETENTION, handle_session_cleanup
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.messaging.schedule import SESSION_CLEANUP, ScheduleTick
from prs_shared.testing.probe import MIGRATIONS

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


async def test_inbox_rows_older_than_retention_are_removed_and_newer_kept(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    await upgrade(engine, MIGRATIONS)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        for message_id, age in (
            ("old", INBOX_RETENTION + timedelta(hours=1)),
            ("new", timedelta(hours=1)),
        ):
            await session.execute(
                insert(inbox).values(
                    message_id=message_id, message_type="diagnostic.ping", processed_at=NOW - age
                )
            )
    tick = ScheduleTick(job="session_cleanup", scheduled_for=NOW)
    async with sessions() as session, session.begin():
        ctx = HandlerContext(
            envelope=Envelope(type=SESSION_CLEANUP.type, payload=tick.model_dump(mode="json")),
            session=session,
            service="probe",
            worker="test",
            attempt=1,
            queue="probe.events",
        )
        result = await handle_session_cleanup(tick, ctx, ())
    async with sessions() as session:
        left = set((await session.execute(select(inbox.c.message_id))).scalars())
    await engine.dispose()
    assert result == {"inbox_rows_removed": 1}
    assert left == {"new"}
