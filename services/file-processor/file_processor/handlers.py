"""``file.process``: validate, scan and store an upload; announce ``file.processed`` or refuse it.

A refused file fails the task at once (``PermanentError``: dead-lettered with the reason, no
retry) after its rejection and the ``file.rejected`` event were committed on their own — see
:mod:`file_processor.rejections`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from file_processor.models import ScanResult, StoredFile
from file_processor.owners import ensure_callers
from file_processor.processing import FileRefused, Pipeline, file_id_for, owner_key
from file_processor.rejections import Rejection, RejectionLog
from prs_shared.messaging.errors import PermanentError
from prs_shared.messaging.files import (
    FILE_PROCESSED,
    FILE_REJECTED,
    FileProcessed,
    FileRejected,
    ProcessFile,
)
from prs_shared.messaging.handlers import HandlerContext


@dataclass
class FileDeps:
    pipeline: Pipeline
    rejections: RejectionLog
    clock: Callable[[], datetime]


async def handle_process_file(
    command: ProcessFile, ctx: HandlerContext, deps: FileDeps
) -> dict[str, Any]:
    # Before the upload is even read: a file for another organization's user or deal leaves no
    # stored file, scan result or event behind (see file_processor.owners).
    await ensure_callers(ctx.session, command, ctx.envelope.organization_id)
    try:
        return await _process(command, ctx, deps)
    except FileRefused as refusal:
        await _reject(command, ctx, deps, refusal)
        raise PermanentError(f"file rejected: {refusal.reason}") from None


async def _process(command: ProcessFile, ctx: HandlerContext, deps: FileDeps) -> dict[str, Any]:
    upload = await deps.pipeline.load(command)
    organization_id = ctx.envelope.organization_id
    file_id = file_id_for(command, organization_id)
    existing = await ctx.session.scalar(select(StoredFile).where(StoredFile.file_id == file_id))
    if existing is not None:
        # The same content for the same owner again: stored already, say so once more. Its
        # verdict is the stored file's (same SHA-256); recording it lets the system cleanup
        # remove this upload as well.
        ctx.session.add(
            ScanResult(
                message_id=str(ctx.envelope.id),
                file_id=existing.file_id,
                file_type=command.file_type,
                sha256=upload.sha256,
                original_filename=command.original_filename,
                sniffed_type=existing.sniffed_type,
                verdict="clean",
                reason=None,
                scanner="same content as the stored file",
                scanned_at=deps.clock(),
                upload_path=command.stored_path,
            )
        )
        _announce(command, ctx, existing.file_id, existing.variants)
        return _result(existing, duplicate=True)
    processed = await deps.pipeline.process(command, upload, file_id)
    now = deps.clock()
    stored = StoredFile(
        file_id=file_id,
        file_type=command.file_type,
        owner_key=owner_key(command, organization_id),
        user_id=command.user_id,
        deal_id=command.deal_id,
        original_filename=command.original_filename,
        sha256=upload.sha256,
        size=command.size,
        sniffed_type=processed.sniffed.mime,
        variants=processed.variants,
        details=processed.details,
        source_message_id=str(ctx.envelope.id),
        created_at=now,
    )
    ctx.session.add(stored)
    ctx.session.add(
        ScanResult(
            message_id=str(ctx.envelope.id),
            file_id=file_id,
            file_type=command.file_type,
            sha256=upload.sha256,
            original_filename=command.original_filename,
            sniffed_type=processed.sniffed.mime,
            verdict="clean",
            reason=None,
            scanner=processed.scanner,
            scanned_at=now,
            upload_path=command.stored_path,
        )
    )
    await ctx.session.flush()
    _announce(command, ctx, file_id, processed.variants)
    return _result(stored, duplicate=False)


def _announce(
    command: ProcessFile, ctx: HandlerContext, file_id: str, variants: dict[str, str]
) -> None:
    ctx.caused(
        FILE_PROCESSED.type,
        FileProcessed(
            file_id=file_id,
            file_type=command.file_type,
            variants=variants,
            user_id=command.user_id,
            deal_id=command.deal_id,
            scan="clean",
        ),
    )


def _result(stored: StoredFile, *, duplicate: bool) -> dict[str, Any]:
    return {
        "file_id": stored.file_id,
        "file_type": stored.file_type,
        "sniffed_type": stored.sniffed_type,
        "variants": dict(stored.variants),
        **stored.details,
        "scan": "clean",
        "duplicate": duplicate,
    }


async def _reject(
    command: ProcessFile, ctx: HandlerContext, deps: FileDeps, refusal: FileRefused
) -> None:
    event = ctx.envelope.caused(
        FILE_REJECTED.type,
        FileRejected(
            file_type=command.file_type,
            original_filename=command.original_filename,
            reason=refusal.reason,
            user_id=command.user_id,
            deal_id=command.deal_id,
        ),
    )
    await deps.rejections.record(
        Rejection(
            message_id=str(ctx.envelope.id),
            file_type=command.file_type,
            sha256=command.sha256,
            original_filename=command.original_filename,
            sniffed_type=refusal.sniffed,
            reason=refusal.reason,
            scanner=refusal.check,
            at=deps.clock(),
            upload_path=command.stored_path,
        ),
        event,
    )
