"""The system cleanup deletes uploads the service has finished with: a processed one after
PRS_RETENTION_UPLOADS_HOURS, a rejected one after its quarantine; nothing younger."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from file_processor.models import ScanResult
from prs_shared.db.tables import inbox
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.files import PROCESS_FILE
from prs_shared.messaging.schedule import SESSION_CLEANUP, ScheduleTick
from prs_shared.testing.fixtures import eventually


def command_envelope(command) -> Envelope:
    return Envelope(
        type=PROCESS_FILE.type,
        task_id=uuid.uuid4(),
        organization_id="org-1",
        payload=command.model_dump(mode="json"),
    )


async def cleanup_at(host, publisher, at: datetime) -> None:
    """Send the hourly tick as if it were ``at``, and wait until the service has handled it."""
    tick = Envelope(
        type=SESSION_CLEANUP.type,
        payload=ScheduleTick(job="system_cleanup", scheduled_for=at).model_dump(mode="json"),
    )
    await publisher.publish(tick)

    async def handled() -> bool:
        async with host.sessions() as session:
            found = await session.scalar(
                select(inbox.c.message_id).where(inbox.c.message_id == str(tick.id))
            )
            return found is not None

    await eventually(handled, message="cleanup tick handled")


async def test_processed_uploads_go_after_retention_and_rejected_ones_after_quarantine(
    database_url, run_file_processor, publisher, tap, uploads, files, introduce
):
    events = await tap("task.#")
    clean = uploads.put(files.jpeg_with_exif(), "me.jpg")
    rejected = uploads.put(files.pdf_with_javascript(), "terms.pdf", "deal_attachment")
    clean_path = uploads.root / clean.stored_path
    rejected_path = uploads.root / rejected.stored_path
    async with run_file_processor(database_url) as host:
        await introduce(host, "org-1", users=["u-1"], deals=["d-1"])
        await publisher.publish(command_envelope(clean))
        await publisher.publish(command_envelope(rejected))
        await events.wait_for(lambda s: {"task.succeeded", "task.failed"} <= {e.type for e in s})
        # The same picture again, uploaded to a place of its own: a duplicate, removed the same.
        again = clean.model_copy(update={"stored_path": "again/me.jpg"})
        (uploads.root / "again").mkdir()
        (uploads.root / "again/me.jpg").write_bytes(clean_path.read_bytes())
        await publisher.publish(command_envelope(again))
        await events.wait_for(lambda s: [e.type for e in s].count("task.succeeded") == 2)
        now = datetime.now(UTC)

        await cleanup_at(host, publisher, now + timedelta(minutes=30))
        assert clean_path.exists(), "processed 30 minutes ago: within the hour's retention"
        assert rejected_path.exists()

        await cleanup_at(host, publisher, now + timedelta(hours=2))
        assert not clean_path.exists()
        assert not (uploads.root / "again").exists(), "the duplicate and its folder are gone"
        assert rejected_path.exists(), "rejected files stay in quarantine for 7 days"

        await cleanup_at(host, publisher, now + timedelta(days=8))
        assert not rejected_path.exists()

        async with host.sessions() as session:
            marked = (
                await session.execute(select(ScanResult.verdict, ScanResult.upload_removed_at))
            ).all()
        # On SQLite rejections live in their own database; the clean verdict is here on both.
        assert ("clean", now + timedelta(hours=2)) in [(v, r) for v, r in marked]
