"""The seed's queuing endpoints: deal processing, file processing, notifications."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from gateway.api.accept import ACCEPTED, IDEMPOTENT, accept
from gateway.api.body_limit import BodyTooLarge
from gateway.api.deps import (
    QueuingPrincipal,
    StateDep,
    effective_organization,
    require,
)
from gateway.api.problems import Problem, field_errors, invalid
from gateway.api.schemas import QueuedResponse
from gateway.api.schemas_queue import (
    QueueDealProcessing,
    QueueFileProcessingJson,
    SendNotificationRequest,
)
from gateway.auth import Principal, Role
from gateway.uploads import BadPath, UploadTooLarge, hash_file, resolve_inside, save_upload
from prs_shared.messaging.deals import PROCESS_DEAL_WORKFLOW, ProcessDealWorkflow
from prs_shared.messaging.envelope import Priority
from prs_shared.messaging.files import PROCESS_FILE, ProcessFile
from prs_shared.messaging.notifications import SEND_NOTIFICATION, SendNotification

router = APIRouter(prefix="/api/background-tasks", tags=["background tasks"])

QUEUERS = require(Role.OPERATOR, Role.SERVICE)


@router.post(
    "/queue-deal-processing/",
    status_code=status.HTTP_202_ACCEPTED,
    responses=ACCEPTED,
    dependencies=[QUEUERS, IDEMPOTENT],
)
async def queue_deal_processing(
    body: QueueDealProcessing,
    request: Request,
    principal: QueuingPrincipal,
    state: StateDep,
) -> QueuedResponse:
    """Queue a workflow action (verify, commission, payment status, invoice) on a deal."""
    return await accept(
        state=state,
        request=request,
        principal=principal,
        type_=PROCESS_DEAL_WORKFLOW.type,
        payload=ProcessDealWorkflow(
            deal_id=body.deal_id, workflow_action=body.workflow_action, user_id=body.user_id
        ),
        priority=body.priority,
        organization_id=effective_organization(principal, body.organization_id),
    )


_FILE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "file_type"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "file_type": {
                            "type": "string",
                            "enum": ["profile_picture", "deal_attachment"],
                        },
                        "priority": {"type": "string", "enum": ["high", "medium", "low"]},
                        "user_id": {"type": "string"},
                        "deal_id": {"type": "string"},
                        "organization_id": {"type": "string"},
                    },
                }
            },
            "application/json": {
                "schema": QueueFileProcessingJson.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                ),
                "example": {
                    "file_type": "profile_picture",
                    "file_path": "incoming/upload.jpg",
                    "original_filename": "profile.jpg",
                    "priority": "medium",
                },
            },
        },
    }
}


@router.post(
    "/queue-file-processing/",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **ACCEPTED,
        400: {"description": "file_path outside the upload directory or not a file."},
        413: {"description": "A file over PRS_MAX_UPLOAD_BYTES, JSON over PRS_MAX_JSON_BYTES."},
        415: {"description": "Neither multipart/form-data nor application/json."},
    },
    dependencies=[QUEUERS, IDEMPOTENT],
    openapi_extra=_FILE_BODY,
)
async def queue_file_processing(
    request: Request, principal: QueuingPrincipal, state: StateDep
) -> QueuedResponse:
    """Queue a profile picture or deal attachment: upload it (multipart) or name it (JSON)."""
    content_type = request.headers.get("content-type", "")
    uploaded = content_type.startswith("multipart/form-data")
    if uploaded:
        command, priority, org = await _from_multipart(request, principal, state)
    elif content_type.startswith("application/json"):
        command, priority, org = await _from_json(request, principal, state)
    else:
        raise Problem(415, "Unsupported media type", "send multipart/form-data or JSON")

    def discard_upload() -> None:
        # A repeated upload that makes no new task leaves no second copy behind.
        stored = state.settings.resolved_upload_dir() / command.stored_path
        stored.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            stored.parent.rmdir()

    return await accept(
        state=state,
        request=request,
        principal=principal,
        type_=PROCESS_FILE.type,
        payload=command,
        priority=priority,
        organization_id=org,
        # Each upload is stored under a fresh name; the same bytes are the same request.
        fingerprint_ignores=frozenset({"stored_path"}) if uploaded else frozenset(),
        discard=discard_upload if uploaded else None,
    )


def _invalid(field: str, message: str) -> Problem:
    return invalid([{"field": field, "message": message}])


def _too_large(limit: int) -> Problem:
    return Problem(413, "Payload too large", f"files are limited to {limit} bytes")


async def _from_multipart(
    request: Request, principal: Principal, state: StateDep
) -> tuple[ProcessFile, Priority, str | None]:
    # A body declared (or, chunked, read) past the limit is refused by the body-limit middleware.
    limit = state.settings.max_upload_bytes
    try:
        form = await request.form(max_files=1, max_fields=20)
    except BodyTooLarge:
        raise  # a chunked body past the limit: 413, not a malformed body
    except Exception as exc:
        raise Problem(400, "Malformed multipart body", str(exc)[:200]) from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise _invalid("file", "a file part named 'file' is required")
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        priority = Priority(fields.get("priority", "medium"))
    except ValueError:
        raise _invalid("priority", "must be high, medium or low") from None
    original = upload.filename or "upload"
    try:
        stored = await save_upload(upload, original, state.settings.resolved_upload_dir(), limit)
    except UploadTooLarge:
        raise _too_large(limit) from None
    try:
        command = ProcessFile(
            file_type=fields.get("file_type"),
            stored_path=stored.relative_path,
            original_filename=original[:255],
            content_type=upload.content_type,
            size=stored.size,
            sha256=stored.sha256,
            user_id=fields.get("user_id"),
            deal_id=fields.get("deal_id"),
        )
    except ValidationError as exc:
        (state.settings.resolved_upload_dir() / stored.relative_path).unlink(missing_ok=True)
        raise _from_validation(exc) from None
    return command, priority, effective_organization(principal, fields.get("organization_id"))


async def _from_json(
    request: Request, principal: Principal, state: StateDep
) -> tuple[ProcessFile, Priority, str | None]:
    try:
        raw = json.loads(await request.body())
        body = QueueFileProcessingJson.model_validate(raw)
    except ValueError as exc:  # bad JSON, or bytes that are not UTF-8
        if isinstance(exc, ValidationError):
            raise _from_validation(exc) from None
        raise Problem(400, "Malformed JSON", "the body is not valid UTF-8 JSON") from None
    upload_dir = state.settings.resolved_upload_dir()
    try:
        path = resolve_inside(upload_dir, body.file_path)
        facts = hash_file(path, state.settings.max_upload_bytes)
    except BadPath as exc:
        raise Problem(
            400,
            "Invalid file_path",
            str(exc),
            errors=[{"field": "file_path", "message": str(exc)}],
        ) from None
    except UploadTooLarge:
        raise _too_large(state.settings.max_upload_bytes) from None
    command = ProcessFile(
        file_type=body.file_type,
        stored_path=str(path.relative_to(upload_dir.resolve())),
        original_filename=body.original_filename,
        size=facts.size,
        sha256=facts.sha256,
        user_id=body.user_id,
        deal_id=body.deal_id,
    )
    return command, body.priority, effective_organization(principal, body.organization_id)


def _from_validation(exc: ValidationError) -> Problem:
    return invalid(field_errors(exc.errors()))


@router.post(
    "/send-notification/",
    status_code=status.HTTP_202_ACCEPTED,
    responses=ACCEPTED,
    dependencies=[QUEUERS, IDEMPOTENT],
)
async def send_notification(
    body: SendNotificationRequest,
    request: Request,
    principal: QueuingPrincipal,
    state: StateDep,
) -> QueuedResponse:
    """Queue an email notification to a user, an organization's role, or (admins) an address."""
    if body.recipient_type == "email" and not principal.is_admin:
        raise Problem(403, "Forbidden", "only admin keys may send to an explicit address")
    try:
        command = SendNotification(
            notification_type=body.notification_type,
            recipient_type=body.recipient_type,
            user_id=body.user_id,
            role=body.role,
            email=body.email,
            deal_id=body.deal_id,
            additional_data=body.additional_data,
        )
    except ValidationError as exc:
        raise _from_validation(exc) from None
    return await accept(
        state=state,
        request=request,
        principal=principal,
        type_=SEND_NOTIFICATION.type,
        payload=command,
        priority=body.priority,
        organization_id=effective_organization(principal, body.organization_id),
        queue="auth" if body.notification_type.is_password else None,
    )
