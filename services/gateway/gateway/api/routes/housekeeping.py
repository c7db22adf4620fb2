"""Retention cleanup on request, for admins: the gateway's plan (dry run) or a run now, and the
plan of every service's part (``housekeeping.cleanup_plan``, one task per service)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status

from gateway.api.accept import queued_response
from gateway.api.deps import CurrentPrincipal, SessionDep, StateDep, require
from gateway.api.problems import Problem
from gateway.api.schemas import DIAGNOSTIC_QUEUES, DiagnosticResponse, QueuedResponse
from gateway.auth import Principal, Role
from gateway.cleanup import JOBS, CleanupJob, CleanupReport, Housekeeping
from gateway.queueing import queue_task
from prs_shared.messaging.envelope import Priority, utcnow
from prs_shared.messaging.housekeeping import CLEANUP_PLAN, CleanupPlanRequest

router = APIRouter(prefix="/api/housekeeping", tags=["housekeeping"])

ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"description": "Needs an admin key not scoped to an organization."}
}


def _unscoped(principal: Principal) -> None:
    if principal.organization_id is not None:
        # Retention spans every organization; a scoped key must not see or delete another's rows.
        raise Problem(403, "Forbidden", "cleanup needs an admin key not scoped to an organization")


@router.post("/cleanup/", dependencies=[require(Role.ADMIN)], responses=ADMIN_ONLY)
async def cleanup(
    session: SessionDep,
    principal: CurrentPrincipal,
    state: StateDep,
    dry_run: Annotated[bool, Query(description="Report what would go; delete nothing.")] = True,
    job: Annotated[
        list[CleanupJob] | None, Query(description="Only these jobs (default: both).")
    ] = None,
) -> CleanupReport:
    """What the gateway's retention cleanup removes now (rows, bytes, files), and with
    ``dry_run=false`` remove it, as the scheduled jobs do."""
    _unscoped(principal)
    housekeeping = Housekeeping.from_settings(state.settings, state.files)
    async with session.begin():
        return await housekeeping.run(session, utcnow(), jobs=tuple(job or JOBS), dry_run=dry_run)


@router.post(
    "/cleanup-plan/",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[require(Role.ADMIN)],
    responses=ADMIN_ONLY,
)
async def cleanup_plan(
    request: Request, session: SessionDep, principal: CurrentPrincipal, state: StateDep
) -> DiagnosticResponse:
    """Ask every service what its part of the system cleanup would remove now: one
    ``housekeeping.cleanup_plan`` task per service, whose result is that service's plan."""
    _unscoped(principal)
    now = utcnow()
    queued: dict[str, QueuedResponse] = {}
    async with session.begin():
        for service, queue in DIAGNOSTIC_QUEUES.items():
            task = await queue_task(
                session,
                state.host.topology,
                type_=CLEANUP_PLAN.type,
                # One time for all, so that the services' plans add up to one moment's.
                payload=CleanupPlanRequest(at=now),
                priority=Priority.HIGH,
                organization_id=None,
                queued_by=principal.name,
                queue=queue,
            )
            queued[service] = queued_response(request, task)
    state.host.relay.notify()
    return DiagnosticResponse(tasks=queued)
