"""``file.process`` through RabbitMQ: the task succeeds with variants in the file store and
``file.processed`` published, or fails with the reason and ``file.rejected`` published."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from file_processor.models import ScanResult, StoredFile
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.files import PROCESS_FILE
from prs_shared.testing.fixtures import eventually


def command_envelope(command, **fields) -> Envelope:
    return Envelope(
        type=PROCESS_FILE.type,
        task_id=uuid.uuid4(),
        organization_id="org-1",
        payload=command.model_dump(mode="json"),
        **fields,
    )


async def test_a_profile_picture_is_processed_and_announced(
    database_url, run_file_processor, publisher, tap, uploads, files, tmp_path, introduce
):
    events = await tap("file.#", "task.#")
    command = uploads.put(files.jpeg_with_exif(), "me.jpg")
    async with run_file_processor(database_url) as host:
        await introduce(host, "org-1", users=["u-1"])
        first = command_envelope(command)
        await publisher.publish(first)
        seen = await events.wait_for(
            lambda s: {"task.succeeded", "file.processed"} <= {e.type for e in s}
        )
        processed = events.of_type("file.processed")
        assert len(processed) == 1
        assert processed[0].causation_id == first.id
        assert processed[0].organization_id == "org-1"
        payload = processed[0].payload
        assert payload["scan"] == "clean"
        assert payload["user_id"] == "u-1"
        assert set(payload["variants"]) == {"thumbnail", "medium", "large"}
        for key in payload["variants"].values():
            assert (tmp_path / "files" / key).is_file()
        result = next(e for e in seen if e.type == "task.succeeded").payload["result"]
        assert result["file_id"] == payload["file_id"]
        assert result["sniffed_type"] == "image/jpeg"
        assert (result["width"], result["height"]) == (800, 1200)

        # The same file again (another message): one stored file, announced again.
        await publisher.publish(command_envelope(command))
        await events.wait_for(
            lambda s: len([e for e in s if e.type in ("task.succeeded", "file.processed")]) == 4
        )
        again = [e for e in events.seen if e.type == "task.succeeded"][1].payload["result"]
        assert again["duplicate"] is True
        assert again["file_id"] == result["file_id"]
        async with host.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(StoredFile)) == 1
            assert await session.scalar(select(ScanResult.verdict)) == "clean"


async def test_a_rejected_attachment_fails_its_task_and_is_announced(
    database_url, run_file_processor, publisher, tap, uploads, files, broker, topology, introduce
):
    events = await tap("file.#", "task.#")
    command = uploads.put(files.pdf_with_javascript(), "terms.pdf", "deal_attachment")
    async with run_file_processor(database_url) as host:
        await introduce(host, "org-1", deals=["d-1"])
        envelope = command_envelope(command)
        await publisher.publish(envelope)
        await events.wait_for(lambda s: {"task.failed", "file.rejected"} <= {e.type for e in s})
        failed = events.of_type("task.failed")[0].payload
        assert "file rejected: PDF with active content" in failed["error"]
        rejected = events.of_type("file.rejected")[0]
        assert rejected.causation_id == envelope.id
        assert rejected.payload["deal_id"] == "d-1"
        assert rejected.payload["original_filename"] == "terms.pdf"
        assert "active content" in rejected.payload["reason"]
        assert not events.of_type("file.processed")

        async def dead_lettered() -> bool:
            return (
                await broker.queue(topology.dlq(topology.queue("file_processing")))
            ).messages == 1

        await eventually(dead_lettered, message="the command is in the DLQ")
        reason = await host.components.rejections.reason_for(str(envelope.id))
        assert reason is not None
        assert "active content" in reason
        async with host.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(StoredFile)) == 0
