"""Rejections, committed on their own so that they outlive the failed task's rollback.

A refused file fails its task (``PermanentError``: dead-lettered with the reason, no retry), and
everything the handler staged in the message's transaction rolls back with it. Other services
still need to hear about the refusal (deal-workflow fails the verification of a deal whose
attachment was rejected), so the ``scan_results`` row and the ``file.rejected`` outbox row are
committed first, in a transaction of their own:

- PostgreSQL: on another connection to the service database;
- SQLite: in a sibling database file (``<db>-rejections.sqlite3``) with its own outbox relay,
  because the handler's transaction holds the service database's only write lock while it runs.

The row is keyed by the command's message id, so a redelivery records (and announces) nothing
twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from file_processor.models import ScanResult
from prs_shared.db.tables import outbox
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.outbox import outbox_rows
from prs_shared.messaging.topology import Topology


@dataclass(frozen=True)
class Rejection:
    message_id: str
    file_type: str
    sha256: str
    original_filename: str
    sniffed_type: str | None
    reason: str
    scanner: str
    at: datetime
    upload_path: str | None = None


class RejectionLog:
    """Commits a rejection and its ``file.rejected`` event together, apart from the handler."""

    def __init__(
        self,
        engine: AsyncEngine,
        topology: Topology,
        *,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self._topology = topology
        self.on_committed = on_committed

    async def record(self, rejection: Rejection, event: Envelope) -> bool:
        """True if recorded now; False if this message's rejection was recorded before."""
        try:
            async with self.engine.begin() as conn:
                prior = await conn.scalar(
                    select(ScanResult.id).where(ScanResult.message_id == rejection.message_id)
                )
                if prior is not None:
                    return False
                await conn.execute(
                    insert(ScanResult).values(
                        message_id=rejection.message_id,
                        file_id=None,
                        file_type=rejection.file_type,
                        sha256=rejection.sha256,
                        original_filename=rejection.original_filename[:255],
                        sniffed_type=rejection.sniffed_type,
                        verdict="rejected",
                        reason=rejection.reason[:2000],
                        scanner=rejection.scanner,
                        scanned_at=rejection.at,
                        upload_path=rejection.upload_path,
                    )
                )
                await conn.execute(insert(outbox), outbox_rows([event], self._topology))
        except IntegrityError:
            return False  # a concurrent delivery of the same message recorded it first
        if self.on_committed is not None:
            self.on_committed()
        return True

    async def reason_for(self, message_id: str) -> str | None:
        async with self.engine.connect() as conn:
            reason: str | None = await conn.scalar(
                select(ScanResult.reason).where(
                    ScanResult.message_id == message_id, ScanResult.verdict == "rejected"
                )
            )
            return reason
