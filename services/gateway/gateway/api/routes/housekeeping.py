"""Retention cleanup on request: the plan (dry run) or a run now, for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.api.deps import CurrentPrincipal, SessionDep, StateDep, require
from gateway.api.problems import Problem
from gateway.auth import Role
from gateway.cleanup import JOBS, CleanupJob, CleanupReport, Housekeeping
from prs_shared.messaging.envelope import utcnow

router = APIRouter(prefix="/api/housekeeping", tags=["housekeeping"])


@router.post(
    "/cleanup/",
    dependencies=[require(Role.ADMIN)],
    responses={403: {"description": "Needs an admin key not scoped to an organization."}},
)
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
    if principal.organization_id is not None:
        # Retention spans every organization; a scoped key must not delete another's rows.
        raise Problem(403, "Forbidden", "cleanup needs an admin key not scoped to an organization")
    housekeeping = Housekeeping.from_settings(state.settings, state.files)
    async with session.begin():
        return await housekeeping.run(session, utcnow(), jobs=tuple(job or JOBS), dry_run=dry_run)
