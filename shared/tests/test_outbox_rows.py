"""The outbox relay removes exactly the rows it published."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert, select

from prs_shared.db.engine import create_engine, session_factory
from prs_shared.db.migrations import upgrade
from prs_shared.messaging.envelope import Envelope
from prs_shared.testing.probe import MIGRATIONS


async def test_a_relay_never_deletes_a_row_it_did_not_publish_when_sqlite_reuses_ids(
    tmp_path: Path,
) -> None:
    from prs_shared.db.tables import outbox
    from prs_shared.messaging.outbox import _delete_rows, outbox_rows
    from prs_shared.messaging.topology import Topology

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    await upgrade(engine, MIGRATIONS)
    sessions = session_factory(engine)
    ping = Envelope(type="diagnostic.ping", payload={})
    async with sessions() as session, session.begin():
        await session.execute(insert(outbox), outbox_rows([ping], Topology()))
    async with sessions() as session:
        seen_by_slow_relay = (await session.execute(select(outbox))).mappings().all()
    # Another relay publishes and removes the row; a new message then takes the same rowid.
    async with sessions() as session, session.begin():
        await session.execute(_delete_rows(seen_by_slow_relay, [seen_by_slow_relay[0]["id"]]))
        later = Envelope(type="diagnostic.ping", payload={})
        await session.execute(insert(outbox), outbox_rows([later], Topology()))
    async with sessions() as session:
        reused = (await session.execute(select(outbox.c.id, outbox.c.message_id))).one()
    assert reused.id == seen_by_slow_relay[0]["id"]  # SQLite reused the rowid
    # The slow relay now removes what it published: the new row must stay.
    async with sessions() as session, session.begin():
        await session.execute(_delete_rows(seen_by_slow_relay, [seen_by_slow_relay[0]["id"]]))
    async with sessions() as session:
        left = (await session.execute(select(outbox.c.message_id))).scalars().all()
    await engine.dispose()
    assert left == [str(later.id)]
