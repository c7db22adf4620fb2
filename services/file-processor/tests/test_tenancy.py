"""Files of another organization's user or deal (DESIGN.md §3 rule 8), through RabbitMQ.

The envelope's ``organization_id`` is the caller's organization. A profile picture for another
organization's user, or an attachment for another organization's deal, must end exactly like one
for a user or deal nobody announced — same status, attempts and error — and leave nothing: no
stored file, no scan result, no ``file.processed`` or ``file.rejected``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from file_processor.models import ScanResult, StoredFile
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.files import PROCESS_FILE, ProcessFile
from prs_shared.testing.fixtures import final_lifecycle

MINE, THEIRS = "org-mine", "org-theirs"
OWNER_FIELD = {"profile_picture": "user_id", "deal_attachment": "deal_id"}


def as_caller(command: ProcessFile, organization_id: str | None) -> Envelope:
    return Envelope(
        type=PROCESS_FILE.type,
        task_id=uuid.uuid4(),
        organization_id=organization_id,
        payload=command.model_dump(mode="json"),
    )


def stored_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("file_type", ["profile_picture", "deal_attachment"])
async def test_a_file_for_another_organizations_owner_ends_like_one_for_an_unknown_owner(
    database_url: str,
    run_file_processor: Any,
    publisher: Any,
    tap: Any,
    uploads: Any,
    files: Any,
    introduce: Any,
    tmp_path: Path,
    file_type: str,
) -> None:
    field = OWNER_FIELD[file_type]
    kind = field.removesuffix("_id")
    mine, theirs, unknown = f"{kind}-mine", f"{kind}-theirs", f"{kind}-nobody"
    events = await tap("file.#", "task.#")
    store = tmp_path / "files"

    def upload(owner: str, data: bytes, name: str) -> ProcessFile:
        command: ProcessFile = uploads.put(data, name, file_type, **{field: owner})
        return command

    # The refused ones carry the EICAR test signature: even a file the scanner would reject
    # must leave no rejection behind when its owner is not the caller's.
    foreign = as_caller(upload(theirs, files.EICAR, "a.jpg"), MINE)
    nobody = as_caller(upload(unknown, files.EICAR, "b.jpg"), MINE)
    own = as_caller(upload(mine, files.webp_image(), "c.webp"), MINE)
    async with run_file_processor(database_url, max_retries=1, retry_base_delay=0.05) as host:
        await introduce(host, MINE, **{f"{kind}s": [mine]})
        await introduce(host, THEIRS, **{f"{kind}s": [theirs]})
        await publisher.publish_many([foreign, nobody, own])
        seen = await events.wait_for(
            lambda s: all(final_lifecycle(s, e.task_id) for e in (foreign, nobody, own)), timeout=60
        )
        async with host.sessions() as session:
            stored = (await session.execute(select(StoredFile.source_message_id))).scalars().all()
            scans = (await session.execute(select(ScanResult.message_id))).scalars().all()
        rejections = [
            await host.components.rejections.reason_for(str(e.id)) for e in (foreign, nobody)
        ]

    outcome = {e.id: final_lifecycle(seen, e.task_id) for e in (foreign, nobody, own)}
    refused_theirs, refused_unknown = outcome[foreign.id], outcome[nobody.id]
    assert refused_theirs is not None
    assert refused_unknown is not None
    assert refused_unknown.status in ("FAILED", "DEAD_LETTERED")
    assert refused_theirs.status == refused_unknown.status
    assert refused_theirs.attempt == refused_unknown.attempt
    assert (refused_theirs.error or "").replace(theirs, "<id>") == (
        refused_unknown.error or ""
    ).replace(unknown, "<id>")

    accepted = outcome[own.id]
    assert accepted is not None
    assert accepted.status == "SUCCEEDED", accepted.error
    assert accepted.result is not None
    # Only the caller's own file is anywhere: rows, scan results, store, events.
    assert stored == [str(own.id)]
    assert scans == [str(own.id)]
    assert rejections == [None, None]
    assert stored_files(store) == sorted(accepted.result["variants"].values())
    announced = [e for e in seen if e.type in ("file.processed", "file.rejected")]
    assert [(e.type, e.causation_id) for e in announced] == [("file.processed", own.id)]


async def test_a_key_without_organization_may_store_a_file_for_any_user(
    database_url: str,
    run_file_processor: Any,
    publisher: Any,
    tap: Any,
    uploads: Any,
    files: Any,
    introduce: Any,
) -> None:
    events = await tap("task.#")
    command = as_caller(uploads.put(files.webp_image(), "p.webp", user_id="user-theirs"), None)
    async with run_file_processor(database_url) as host:
        await introduce(host, THEIRS, users=["user-theirs"])
        await publisher.publish(command)
        seen = await events.wait_for(lambda s: final_lifecycle(s, command.task_id) is not None)
    done = final_lifecycle(seen, command.task_id)
    assert done is not None
    assert done.status == "SUCCEEDED"


async def test_the_same_ownerless_file_from_two_organizations_is_two_files(
    database_url: str,
    run_file_processor: Any,
    publisher: Any,
    tap: Any,
    uploads: Any,
    files: Any,
) -> None:
    """A duplicate answer would tell one organization what another uploaded."""
    events = await tap("task.#")
    data = files.webp_image()
    ours = as_caller(uploads.put(data, "x.webp", user_id=None), MINE)
    theirs = as_caller(uploads.put(data, "x.webp", user_id=None), THEIRS)
    async with run_file_processor(database_url) as host:
        await publisher.publish(theirs)
        await events.wait_for(lambda s: final_lifecycle(s, theirs.task_id) is not None)
        await publisher.publish(ours)
        seen = await events.wait_for(lambda s: final_lifecycle(s, ours.task_id) is not None)
        async with host.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(StoredFile))
    results = [final_lifecycle(seen, e.task_id) for e in (theirs, ours)]
    assert all(r is not None and r.status == "SUCCEEDED" for r in results)
    first, second = (r.result for r in results if r is not None and r.result is not None)
    assert second["duplicate"] is False
    assert first["file_id"] != second["file_id"]
    assert count == 2
