"""The seed's automated-process endpoints: triggers, audit reports, system health."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from gateway.api.accept import ACCEPTED, IDEMPOTENT, accept
from gateway.api.deps import (
    CurrentPrincipal,
    QueuingPrincipal,
    SessionDep,
    StateDep,
    effective_organization,
    require,
    visible,
)
from gateway.api.problems import Problem
from gateway.api.routes.task_admin import file_response
from gateway.api.schemas import QueuedResponse
from gateway.api.schemas_queue import GenerateAuditReportRequest, TriggerProcessRequest
from gateway.auth import Principal, Role
from gateway.health import system_health
from gateway.models import Report
from gateway.schedules import PROCESSES
from gateway.state import GatewayState
from prs_shared.messaging.catalog import MessageSpec
from prs_shared.messaging.deals import (
    DETECT_OVERDUE_DEALS,
    GENERATE_AUDIT_REPORT,
    RUN_COMMISSION_CALCULATION,
    RUN_VERIFICATION_REMINDERS,
    GenerateAuditReport,
)
from prs_shared.messaging.envelope import Priority

router = APIRouter(prefix="/api/automated-processes", tags=["automated processes"])

TRIGGERERS = require(Role.OPERATOR)


TRIGGERS: dict[str, MessageSpec] = {}
"""Processes that run on demand with no parameters but an organization, by process name."""


async def run_process(
    spec: MessageSpec,
    request: Request,
    principal: Principal,
    state: GatewayState,
    organization_id: str | None,
) -> QueuedResponse:
    """Queue a process's command now, for one organization or all (the caller's, if scoped)."""
    org = effective_organization(principal, organization_id)
    return await accept(
        state=state,
        request=request,
        principal=principal,
        type_=spec.type,
        payload=spec.payload(organization_id=org),
        priority=Priority.MEDIUM,
        organization_id=org,
    )


def _trigger(path: str, spec: MessageSpec, doc: str) -> None:
    """One trigger endpoint: queue the process's command, optionally for one organization."""

    async def trigger(
        request: Request,
        principal: QueuingPrincipal,
        state: StateDep,
        body: TriggerProcessRequest | None = None,
    ) -> QueuedResponse:
        org = body.organization_id if body else None
        return await run_process(spec, request, principal, state, org)

    name = path.strip("/").replace("-", "_")
    trigger.__name__ = name
    TRIGGERS[next(p.name for p in PROCESSES.values() if p.message.type == spec.type)] = spec
    router.add_api_route(
        path,
        trigger,
        methods=["POST"],
        status_code=status.HTTP_202_ACCEPTED,
        responses=ACCEPTED,
        dependencies=[TRIGGERERS, IDEMPOTENT],
        name=name,
        summary=name.replace("_", " ").capitalize(),
        description=doc,
    )


_trigger(
    "/trigger-verification-reminders/",
    RUN_VERIFICATION_REMINDERS,
    "Remind admins and verifiers of deals pending verification for more than 24 hours.",
)
_trigger(
    "/trigger-commission-calculation/",
    RUN_COMMISSION_CALCULATION,
    "Calculate commissions of verified deals and reconcile them with what is stored.",
)
_trigger(
    "/trigger-overdue-detection/",
    DETECT_OVERDUE_DEALS,
    "Find deals past due and unpaid; each is announced once per period.",
)


@router.post(
    "/generate-audit-report/",
    status_code=status.HTTP_202_ACCEPTED,
    responses=ACCEPTED,
    dependencies=[TRIGGERERS, IDEMPOTENT],
)
async def generate_audit_report(
    body: GenerateAuditReportRequest,
    request: Request,
    principal: QueuingPrincipal,
    state: StateDep,
) -> QueuedResponse:
    """Produce an audit report (JSON, CSV and HTML); follow the task, then download it."""
    org = effective_organization(principal, body.organization_id)
    return await accept(
        state=state,
        request=request,
        principal=principal,
        type_=GENERATE_AUDIT_REPORT.type,
        payload=GenerateAuditReport(
            report_type=body.report_type, days=body.days, organization_id=org
        ),
        priority=body.priority,
        organization_id=org,
    )


class ReportSummary(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "report_id": "r-2026-11-28-42",
                    "organization_id": "42",
                    "report_type": "comprehensive",
                    "days": 30,
                    "formats": ["csv", "html", "json"],
                    "generated_at": "2026-11-28T12:00:00Z",
                    "download_urls": {
                        "html": "http://127.0.0.1:8000/api/automated-processes/reports/r-2026-11-28-42/download?format=html"
                    },
                }
            ]
        }
    )

    report_id: str
    organization_id: str | None
    report_type: str
    days: int
    formats: list[str]
    generated_at: datetime
    download_urls: dict[str, str]


@router.get("/reports/")
async def list_reports(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[ReportSummary]:
    """Finished audit reports, newest first."""
    stmt = select(Report).order_by(Report.generated_at.desc()).limit(limit)
    if principal.organization_id is not None:
        stmt = stmt.where(Report.organization_id == principal.organization_id)
    reports = (await session.execute(stmt)).scalars()
    return [_summary(request, r) for r in reports]


def _summary(request: Request, report: Report) -> ReportSummary:
    base = str(request.url_for("download_report", report_id=report.report_id))
    return ReportSummary(
        report_id=report.report_id,
        organization_id=report.organization_id,
        report_type=report.report_type,
        days=report.days,
        formats=sorted(report.files),
        generated_at=report.generated_at,
        download_urls={fmt: f"{base}?format={fmt}" for fmt in sorted(report.files)},
    )


@router.get(
    "/reports/{report_id}/download",
    response_class=FileResponse,
    responses={
        200: {"content": {"text/html": {"example": "<!doctype html><h1>Audit report</h1>"}}},
        404: {"description": "No such report or format."},
    },
)
async def download_report(
    report_id: Annotated[str, Path(max_length=64)],
    session: SessionDep,
    principal: CurrentPrincipal,
    state: StateDep,
    format: Annotated[str, Query(pattern="^(json|csv|html)$")] = "html",
) -> FileResponse:
    """Download a finished audit report as JSON, CSV or HTML."""
    report = await session.get(Report, report_id)
    if report is None or not visible(principal, report.organization_id):
        raise Problem(404, "Report not found", f"no report {report_id}")
    key = report.files.get(format)
    if key is None:
        raise Problem(404, "Format not available", f"report {report_id} has no {format}")
    return file_response(state.files, key)


@router.get(
    "/system-health/",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "status": "degraded",
                        "reasons": ["service scheduler has no recent heartbeat"],
                        "checked_at": "2026-11-28T12:00:00+00:00",
                        "checks": {
                            "database": {"status": "ok", "latency_ms": 0.8},
                            "broker": {
                                "status": "ok",
                                "queues": [
                                    {
                                        "name": "workflow",
                                        "messages": 0,
                                        "consumers": 1,
                                        "dead_letters": 0,
                                    }
                                ],
                            },
                            "services": {
                                "scheduler": {
                                    "status": "down",
                                    "instances": 0,
                                    "last_heartbeat": None,
                                    "in_flight": 0,
                                }
                            },
                            "disk": {"status": "ok", "free_bytes": 10**10, "total_bytes": 10**11},
                            "smtp": {"status": "not_configured"},
                        },
                    }
                }
            }
        },
        503: {"description": "Unhealthy: the database or the broker is unreachable."},
    },
)
async def get_system_health(state: StateDep, principal: CurrentPrincipal) -> JSONResponse:
    """Database, broker (queue depths, consumers), service heartbeats, disk space and SMTP."""
    report = await system_health(state.host, state.settings, principal.organization_id)
    return JSONResponse(report, status_code=503 if report["status"] == "unhealthy" else 200)
