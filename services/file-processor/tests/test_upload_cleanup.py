"""The system cleanup deletes uploads the service has finished with: a processed one after
PRS_RETENTION_UPLOADS_HOURS, a rejected one after its quarantine; nothing younger."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from file_processor.models import ScanResult
from prs_shared.db.tables import inbox
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.files import PROCESS_FILE
from prs_shared.messaging.housekeeping import CLEANUP_PLAN, CleanupPlanRequest, ServicePlan
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


@pytest.fixture
def two_uploads(uploads, files):
    """A clean picture and a PDF the scan rejects, uploaded; with their paths on disk."""
    clean = uploads.put(files.jpeg_with_exif(), "me.jpg")
    rejected = uploads.put(files.pdf_with_javascript(), "terms.pdf", "deal_attachment")
    return clean, rejected, uploads.root / clean.stored_path, uploads.root / rejected.stored_path


async def judge(host, publisher, events, introduce, clean, rejected) -> None:
    """Let the service judge a clean upload and one it rejects, for an owner it knows."""
    await introduce(host, "org-1", users=["u-1"], deals=["d-1"])
    await publisher.publish(command_envelope(clean))
    await publisher.publish(command_envelope(rejected))
    await events.wait_for(lambda s: {"task.succeeded", "task.failed"} <= {e.type for e in s})


async def test_processed_uploads_go_after_retention_and_rejected_ones_after_quarantine(
    database_url, run_file_processor, publisher, tap, uploads, two_uploads, introduce
):
    events = await tap("task.#")
    clean, rejected, clean_path, rejected_path = two_uploads
    async with run_file_processor(database_url) as host:
        await judge(host, publisher, events, introduce, clean, rejected)
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


async def plan_at(publisher, events, at: datetime) -> dict[str, dict]:
    """Ask the service for its part of the cleanup plan as of ``at``; its sweeps by kind."""
    ask = Envelope(
        type=CLEANUP_PLAN.type,
        task_id=uuid.uuid4(),
        payload=CleanupPlanRequest(at=at).model_dump(mode="json"),
    )
    await publisher.publish(ask, queue="file_processing")

    def answer(seen: list[Envelope]) -> list[Envelope]:
        return [e for e in seen if e.type == "task.succeeded" and e.task_id == ask.task_id]

    (done,) = answer(await events.wait_for(lambda seen: bool(answer(seen))))
    plan = ServicePlan.model_validate(done.payload["result"])
    assert plan.service == "file-processor"
    return {s.kind: s.model_dump() for s in plan.sweeps}


async def test_the_plan_names_exactly_the_uploads_a_run_then_removes_and_removes_nothing(
    database_url, run_file_processor, publisher, tap, uploads, two_uploads, introduce
):
    events = await tap("task.#")
    clean, rejected, clean_path, rejected_path = two_uploads
    async with run_file_processor(database_url) as host:
        await judge(host, publisher, events, introduce, clean, rejected)
        now = datetime.now(UTC)
        clean_size, rejected_size = clean_path.stat().st_size, rejected_path.stat().st_size

        young = await plan_at(publisher, events, now + timedelta(minutes=30))
        assert (young["uploads"]["rows"], young["uploads"]["files"]) == (0, 0)
        assert young["quarantined_uploads"]["rows"] == 0
        assert young["inbox_ids"]["rows"] == 0, "every message id is days younger than a week"

        later = await plan_at(publisher, events, now + timedelta(days=8))
        assert later["uploads"]["rows"] == 1
        assert (later["uploads"]["files"], later["uploads"]["file_bytes"]) == (1, clean_size)
        assert (
            later["quarantined_uploads"]["files"],
            later["quarantined_uploads"]["file_bytes"],
        ) == (
            1,
            rejected_size,
        )
        assert later["inbox_ids"]["rows"] >= 3, "the two commands and the first plan's"
        assert later["inbox_ids"]["bytes"] > 0
        assert clean_path.exists(), "a plan removes nothing"
        assert rejected_path.exists(), "a plan removes nothing"

        await cleanup_at(host, publisher, now + timedelta(days=8))
        assert not clean_path.exists()
        assert not rejected_path.exists()
        after = await plan_at(publisher, events, now + timedelta(days=8))
        assert after["uploads"]["rows"] == after["quarantined_uploads"]["rows"] == 0
