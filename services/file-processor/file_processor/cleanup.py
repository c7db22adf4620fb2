"""The file-processor's part of the hourly system cleanup: uploads it has finished with.

An upload is the gateway's copy of what a caller sent; once judged it is not needed again. A
clean one goes ``PRS_RETENTION_UPLOADS_HOURS`` after it was processed (a redelivered command
within that time still finds it); a rejected one stays in quarantine for
``PRS_RETENTION_QUARANTINE_DAYS`` (to be inspected), then goes too. The scan result stays, with
the time its upload was removed. Rejections live where :mod:`file_processor.rejections` commits
them (their own database on SQLite), so they are marked there.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from file_processor.models import ScanResult
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.messaging.housekeeping import PlannedSweep
from prs_shared.messaging.schedule import ScheduleTick
from prs_shared.storage import InvalidKey, safe_join


def upload_size(upload_dir: Path, relative: str) -> int | None:
    """The size of one upload still on disk; None when it is gone (or names no upload)."""
    try:
        path = safe_join(upload_dir, relative)
    except InvalidKey:
        return None
    return path.stat().st_size if path.is_file() else None


def remove_upload(upload_dir: Path, relative: str) -> int:
    """Delete one upload (and its now empty folder); its size, 0 when it was already gone."""
    try:
        path = safe_join(upload_dir, relative)
    except InvalidKey:
        return 0
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    folder = path.parent
    if folder != upload_dir.resolve():
        # The gateway gives each upload a folder of its own; one not empty is left alone.
        with contextlib.suppress(OSError):
            folder.rmdir()
    return size


@dataclass(frozen=True)
class UploadCleanup:
    upload_dir: Path
    rejections: AsyncEngine
    processed_retention: timedelta
    quarantine: timedelta
    batch_size: int

    async def __call__(self, tick: ScheduleTick, ctx: HandlerContext) -> dict[str, Any]:
        now = tick.scheduled_for
        clean, clean_bytes = await self._sweep(
            ctx.session, "clean", now - self.processed_retention, now
        )
        async with self.rejections.begin() as conn:
            rejected, rejected_bytes = await self._sweep(
                conn, "rejected", now - self.quarantine, now
            )
        return {
            "uploads_removed": clean,
            "quarantined_uploads_removed": rejected,
            "upload_bytes_removed": clean_bytes + rejected_bytes,
        }

    async def plan(self, now: datetime, ctx: HandlerContext) -> list[PlannedSweep]:
        """The uploads a run at ``now`` would remove: the same rows, files stat'ed, none deleted."""
        clean = await self._plan(
            ctx.session,
            "uploads",
            "processed clean uploads",
            "clean",
            self.processed_retention,
            now,
        )
        async with self.rejections.connect() as conn:
            rejected = await self._plan(
                conn,
                "quarantined_uploads",
                "rejected uploads in quarantine",
                "rejected",
                self.quarantine,
                now,
            )
        return [clean, rejected]

    async def _plan(
        self,
        db: AsyncSession | AsyncConnection,
        kind: str,
        description: str,
        verdict: str,
        retention: timedelta,
        now: datetime,
    ) -> PlannedSweep:
        cutoff = now - retention
        rows = (await db.execute(self._due(verdict, cutoff).limit(self.batch_size))).all()
        sizes = [upload_size(self.upload_dir, str(path)) for _, path in rows]
        found = [size for size in sizes if size is not None]
        due = await db.scalar(
            select(func.count()).select_from(self._due(verdict, cutoff).subquery())
        )
        return PlannedSweep(
            job="system_cleanup",
            kind=kind,
            description=description,
            retention_seconds=retention.total_seconds(),
            cutoff=cutoff,
            rows=len(rows),
            # The rows are only marked (their scan result stays): what goes is the files.
            bytes=0,
            files=len(found),
            file_bytes=sum(found),
            left=int(due or 0) - len(rows),
        )

    @staticmethod
    def _due(verdict: str, cutoff: datetime) -> Select[int, str | None]:
        """Uploads of ``verdict`` judged before ``cutoff`` and still there, oldest first."""
        return (
            select(ScanResult.id, ScanResult.upload_path)
            .where(
                ScanResult.verdict == verdict,
                ScanResult.upload_path.is_not(None),
                ScanResult.upload_removed_at.is_(None),
                ScanResult.scanned_at < cutoff,
            )
            .order_by(ScanResult.scanned_at, ScanResult.id)
        )

    async def _sweep(
        self, db: AsyncSession | AsyncConnection, verdict: str, cutoff: datetime, now: datetime
    ) -> tuple[int, int]:
        rows = (await db.execute(self._due(verdict, cutoff).limit(self.batch_size))).all()
        if not rows:
            return 0, 0
        removed = sum(remove_upload(self.upload_dir, str(path)) for _, path in rows)
        await db.execute(
            update(ScanResult)
            .where(ScanResult.id.in_([id_ for id_, _ in rows]))
            .values(upload_removed_at=now)
        )
        return len(rows), removed
