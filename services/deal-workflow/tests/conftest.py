"""Fixtures of the deal-workflow tests: a fixed clock, a file store, migrated databases.

Handler tests run on SQLite and on PostgreSQL. Creating and migrating a PostgreSQL database per
test costs seconds on a busy machine, so one database is migrated per session and emptied before
each test; SQLite gets a fresh migrated file per test. Tests that start whole services take
fresh databases from the shared fixtures instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from deal_workflow.adapters.clock import FixedClock
from deal_workflow.adapters.pdf import FpdfInvoiceRenderer
from deal_workflow.bootstrap import COMMAND_QUEUES, MIGRATIONS, handlers
from deal_workflow.dependencies import Dependencies
from deal_workflow.models import Base
from deal_workflow.settings import DealWorkflowSettings
from deal_workflow.testing import NOW, Harness
from prs_shared.db.engine import SessionFactory, create_engine, session_factory
from prs_shared.db.migrations import upgrade
from prs_shared.db.tables import messaging_metadata
from prs_shared.service import ServiceHost
from prs_shared.storage import LocalFileStore
from prs_shared.testing.fixtures import PgDatabases
from prs_shared.testing.hosts import running_host

TABLES = [t.name for t in (*Base.metadata.sorted_tables, *messaging_metadata.sorted_tables)]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def file_store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


@pytest.fixture
def deps(clock: FixedClock, file_store: LocalFileStore) -> Dependencies:
    return Dependencies(clock=clock, files=file_store, invoices=FpdfInvoiceRenderer())


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine, MIGRATIONS)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def migrated_pg_url(pg_admin_url: str) -> Iterator[str]:
    """One PostgreSQL database at the latest migration, shared by the session's tests."""
    databases = PgDatabases(pg_admin_url)
    url = asyncio.run(databases.create())
    asyncio.run(_migrate(url))
    yield url
    asyncio.run(databases.drop_all())


@pytest.fixture(params=["sqlite", "postgresql"])
def handler_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'deal-workflow.sqlite3'}"
    url: str = request.getfixturevalue("migrated_pg_url")
    return url


@pytest.fixture
async def sessions(handler_db_url: str) -> AsyncIterator[SessionFactory]:
    """An empty database at the latest migration, on SQLite and on PostgreSQL."""
    engine = create_engine(handler_db_url)
    if engine.dialect.name == "sqlite":
        await upgrade(engine, MIGRATIONS)
    else:
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def harness(sessions: SessionFactory, deps: Dependencies) -> Harness:
    return Harness(sessions, deps)


# --- running the service against the real broker --------------------------------------------


@pytest.fixture
def service_settings(
    amqp_url: str, namespace: str, tmp_path: Path
) -> Callable[..., DealWorkflowSettings]:
    def make(database_url: str, **overrides: Any) -> DealWorkflowSettings:
        values: dict[str, Any] = {
            "amqp_url": amqp_url,
            "namespace": namespace,
            "database_url": database_url,
            "data_dir": tmp_path,
            "file_store_dir": tmp_path / "files",
            "retry_base_delay": 0.2,
            "heartbeat_interval": 60,
            "shutdown_grace": 5,
            "metrics_port": 0,
        }
        values.update(overrides)
        return DealWorkflowSettings(**values)

    return make


def running_service(
    settings: DealWorkflowSettings, deps: Dependencies
) -> AbstractAsyncContextManager[ServiceHost]:
    return running_host(
        settings, handlers=handlers(deps), command_queues=COMMAND_QUEUES, migrations=MIGRATIONS
    )


@pytest.fixture
def start_service() -> Callable[..., AbstractAsyncContextManager[ServiceHost]]:
    return running_service
