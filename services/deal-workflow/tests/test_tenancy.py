"""Tenant isolation where the deals live (DESIGN.md §3 rule 8).

A command carries its caller's organization in the envelope (``organization_id``, set by the
gateway from the API key; none for an admin key). Another organization's deal, report scope or
process scope must look exactly like an unknown one — same exception, same message — and leave
nothing behind: no state change, no invoice number, no file, no audit row, no event.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import func, select, update

from deal_workflow.adapters.clock import FixedClock
from deal_workflow.adapters.pdf import FpdfInvoiceRenderer
from deal_workflow.dependencies import Dependencies
from deal_workflow.models import (
    AttachmentVerdict,
    AuditEntry,
    Commission,
    Deal,
    Invoice,
    InvoiceCounter,
    OverdueNotice,
    Report,
    VerificationReminder,
)
from deal_workflow.settings import DealWorkflowSettings
from deal_workflow.testing import NOW, Harness, deal, organization, payment, user, workflow
from prs_shared.messaging import deals as dw
from prs_shared.messaging import prs_events as prs
from prs_shared.messaging.catalog import MessageSpec
from prs_shared.messaging.deals import WorkflowAction as A
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.errors import PermanentError, TransientError
from prs_shared.messaging.files import FILE_REJECTED, FileRejected
from prs_shared.messaging.messages import TaskLifecycle
from prs_shared.messaging.publisher import Publisher
from prs_shared.service import ServiceHost
from prs_shared.storage import LocalFileStore
from prs_shared.testing.fixtures import eventually, final_lifecycle

CMD = dw.PROCESS_DEAL_WORKFLOW
MINE, THEIRS = "org-mine", "org-theirs"
MY_DEAL, THEIR_DEAL, NO_DEAL = "my-deal", "their-deal", "no-such-deal"
# Each organization's deal and its salesperson.
ORGANIZATIONS = ((MINE, MY_DEAL, "sp-mine"), (THEIRS, THEIR_DEAL, "sp-theirs"))

# The state in which each action would change something, so that a leak would show.
PRODUCTIVE_STATE = {
    A.VERIFY_DEAL: "pending_verification",
    A.CALCULATE_COMMISSION: "verified",
    A.UPDATE_PAYMENT_STATUS: "verified",
    A.GENERATE_INVOICE: "verified",
}


async def _two_organizations(
    harness: Harness, state: str = "pending_verification", attachments: tuple[str, ...] = ()
) -> None:
    """Each organization with a salesperson, a deal (in ``state``) and a payment on it."""
    for org, deal_id, person in ORGANIZATIONS:
        facts = deal(
            deal_id, org, salesperson_id=person, client_id=f"c-{org}", attachment_ids=attachments
        )
        await harness.given(
            (prs.ORGANIZATION_CREATED, organization(org)),
            (prs.USER_CREATED, user(person, org)),
            (prs.DEAL_CREATED, facts),
            (prs.PAYMENT_RECORDED, payment(f"p-{org}", deal_id, organization_id=org)),
        )
    async with harness.sessions() as session, session.begin():
        await session.execute(update(Deal).values(state=state))


@dataclass(frozen=True)
class Snapshot:
    deals: list[tuple[Any, ...]]
    counts: dict[str, int]
    files: list[str]


async def _snapshot(harness: Harness, files: Path) -> Snapshot:
    """Everything a command could have changed: rows, counters and stored files."""
    async with harness.sessions() as session:
        deals = [
            tuple(r)
            for r in await session.execute(
                select(
                    Deal.deal_id,
                    Deal.state,
                    Deal.payment_status,
                    Deal.paid_total,
                    Deal.verification_reasons,
                    Deal.updated_at,
                ).order_by(Deal.deal_id)
            )
        ]
        counts = {}
        for model in (
            AuditEntry,
            Commission,
            Invoice,
            InvoiceCounter,
            Report,
            VerificationReminder,
            OverdueNotice,
            AttachmentVerdict,
        ):
            counts[model.__tablename__] = int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
    return Snapshot(deals, counts, _stored(files))


async def _refusal(action: Callable[[], Awaitable[Any]], kind: type[Exception]) -> str:
    with pytest.raises(kind) as raised:
        await action()
    return str(raised.value)


def _stored(root: Path, pattern: str = "*") -> list[str]:
    """The files under ``root`` matching ``pattern``, as sorted relative paths."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(pattern) if p.is_file())


def _files_dir(file_store: LocalFileStore) -> Path:
    root = file_store.path("probe").parent
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.mark.parametrize("action", list(A))
async def test_another_organizations_deal_is_refused_like_an_unknown_one_and_left_untouched(
    harness: Harness, file_store: LocalFileStore, action: A
) -> None:
    await _two_organizations(harness, PRODUCTIVE_STATE[action])
    files = _files_dir(file_store)
    before = await _snapshot(harness, files)

    def as_mine(deal_id: str) -> Callable[[], Awaitable[Any]]:
        return lambda: harness.handle(CMD, workflow(deal_id, action), organization_id=MINE)

    theirs = await _refusal(as_mine(THEIR_DEAL), TransientError)
    unknown = await _refusal(as_mine(NO_DEAL), TransientError)

    # Same words, only the id differs: nothing tells the caller the deal exists elsewhere.
    assert theirs.replace(THEIR_DEAL, "<id>") == unknown.replace(NO_DEAL, "<id>")
    assert await _snapshot(harness, files) == before
    # The caller's own deal works with the same key.
    mine = await harness.handle(CMD, workflow(MY_DEAL, action), organization_id=MINE)
    assert mine.result is not None
    assert mine.result["deal_id"] == MY_DEAL


async def test_a_refused_invoice_spends_no_number_of_either_organization(
    harness: Harness, file_store: LocalFileStore
) -> None:
    await _two_organizations(harness, "verified")
    files = _files_dir(file_store)
    with pytest.raises(TransientError):
        await harness.handle(CMD, workflow(THEIR_DEAL, A.GENERATE_INVOICE), organization_id=MINE)

    mine = await harness.handle(CMD, workflow(MY_DEAL, A.GENERATE_INVOICE), organization_id=MINE)
    theirs = await harness.handle(
        CMD, workflow(THEIR_DEAL, A.GENERATE_INVOICE), organization_id=THEIRS
    )

    # Each organization's first invoice of the year is number 1: nothing was spent in between,
    # and the only PDFs are the two issued.
    assert mine.result is not None
    assert theirs.result is not None
    numbers = {mine.result["invoice_number"], theirs.result["invoice_number"]}
    assert len(numbers) == 1
    assert numbers.pop().endswith("-000001")
    assert _stored(files, "*.pdf") == sorted([mine.result["file_key"], theirs.result["file_key"]])


async def test_a_key_without_organization_may_act_on_any_deal(harness: Harness) -> None:
    await _two_organizations(harness, "verified")
    done = await harness.handle(CMD, workflow(THEIR_DEAL, A.GENERATE_INVOICE))
    assert done.result is not None
    assert done.result["deal_id"] == THEIR_DEAL


PROCESSES: list[tuple[MessageSpec, Callable[[str | None], Any]]] = [
    (
        dw.GENERATE_AUDIT_REPORT,
        lambda org: dw.GenerateAuditReport(report_type="comprehensive", organization_id=org),
    ),
    (dw.RUN_VERIFICATION_REMINDERS, lambda org: dw.RunVerificationReminders(organization_id=org)),
    (dw.RUN_COMMISSION_CALCULATION, lambda org: dw.RunCommissionCalculation(organization_id=org)),
    (dw.DETECT_OVERDUE_DEALS, lambda org: dw.DetectOverdueDeals(organization_id=org)),
]


@pytest.mark.parametrize(("spec", "command"), PROCESSES, ids=[s.type for s, _ in PROCESSES])
async def test_a_report_or_process_for_another_organization_is_refused_like_an_unknown_one(
    harness: Harness,
    file_store: LocalFileStore,
    spec: MessageSpec,
    command: Callable[[str | None], Any],
) -> None:
    await _two_organizations(harness, "verified")
    files = _files_dir(file_store)
    before = await _snapshot(harness, files)

    theirs = await _refusal(
        lambda: harness.handle(spec, command(THEIRS), organization_id=MINE), PermanentError
    )
    unknown = await _refusal(
        lambda: harness.handle(spec, command("org-nobody"), organization_id=MINE), PermanentError
    )

    assert theirs.replace(THEIRS, "<id>") == unknown.replace("org-nobody", "<id>")
    assert await _snapshot(harness, files) == before


async def test_a_scoped_report_without_organization_covers_only_the_callers_organization(
    harness: Harness,
) -> None:
    await _two_organizations(harness)
    done = await harness.handle(
        dw.GENERATE_AUDIT_REPORT,
        dw.GenerateAuditReport(report_type="deals", days=30),
        organization_id=MINE,
    )
    (generated,) = done.of(dw.AUDIT_REPORT_GENERATED)
    assert generated["organization_id"] == MINE
    assert done.result is not None
    assert done.result["sections"]["deals"]["deals created"] == "1"
    async with harness.sessions() as session:
        report = (await session.execute(select(Report))).scalar_one()
    assert report.organization_id == MINE


async def test_a_scoped_process_without_organization_runs_for_the_callers_organization_only(
    harness: Harness,
) -> None:
    await _two_organizations(harness, "verified")
    done = await harness.handle(
        dw.RUN_COMMISSION_CALCULATION, dw.RunCommissionCalculation(), organization_id=MINE
    )
    assert done.result is not None
    assert done.result["organization_id"] == MINE
    assert done.result["deals_checked"] == 1
    async with harness.sessions() as session:
        commissioned = (await session.execute(select(Commission.deal_id))).scalars().all()
    assert commissioned == [MY_DEAL]


async def test_a_file_verdict_from_another_organization_does_not_touch_the_deal(
    harness: Harness,
) -> None:
    """A rejected upload fails the verification of a deal with an unscanned attachment; another
    tenant must not be able to cause that."""
    await _two_organizations(harness, attachments=("att-1",))
    rejected = FileRejected(
        file_type="deal_attachment",
        original_filename="eicar.pdf",
        reason="malware",
        deal_id=THEIR_DEAL,
    )
    done = await harness.handle(FILE_REJECTED, rejected, organization_id=MINE)
    assert done.result is not None
    assert done.result["applied"] is False

    verified = await harness.handle(
        CMD, workflow(THEIR_DEAL, A.VERIFY_DEAL), organization_id=THEIRS
    )
    assert verified.result is not None
    # Waiting for its attachment's verdict, as without the foreign upload; not failed by it.
    assert verified.result["state"] == "manual_review"
    assert not any("eicar" in reason for reason in verified.result["reasons"])


# --- through the broker: the retries and the final status are the same too ------------------


def _retries(events: list[Envelope], task_id: uuid.UUID) -> list[int]:
    return [
        TaskLifecycle.model_validate(e.payload).attempt
        for e in events
        if e.task_id == task_id and e.type == "task.retrying"
    ]


async def test_an_invoice_for_another_organizations_deal_ends_like_one_for_an_unknown_deal(
    database_url: str,
    service_settings: Callable[..., DealWorkflowSettings],
    start_service: Callable[..., AbstractAsyncContextManager[ServiceHost]],
    publisher: Publisher,
    tap: Any,
) -> None:
    settings = service_settings(database_url, max_retries=2, retry_base_delay=0.05)
    files = LocalFileStore(settings.resolved_file_store_dir())
    deps = Dependencies(FixedClock(NOW), files, FpdfInvoiceRenderer())
    events = await tap("task.#")
    async with start_service(settings, deps) as host:
        facts: list[tuple[MessageSpec, BaseModel]] = []
        for org, deal_id, person in ORGANIZATIONS:
            facts += [
                (prs.ORGANIZATION_CREATED, organization(org)),
                (prs.USER_CREATED, user(person, org)),
                (prs.DEAL_CREATED, deal(deal_id, org, salesperson_id=person)),
            ]
        await publisher.publish_many(
            Envelope(type=spec.type, payload=p.model_dump(mode="json")) for spec, p in facts
        )

        async def replicated() -> bool:
            async with host.sessions() as session:
                found = (await session.execute(select(Deal.deal_id))).scalars().all()
            return len(found) == 2

        await eventually(replicated, message="both deals replicated")
        async with host.sessions() as session, session.begin():
            await session.execute(update(Deal).values(state="verified"))

        def invoice(deal_id: str, org: str) -> Envelope:
            return Envelope(
                type=CMD.type,
                payload=workflow(deal_id, A.GENERATE_INVOICE).model_dump(mode="json"),
                organization_id=org,
                task_id=uuid.uuid4(),
            )

        theirs, unknown = invoice(THEIR_DEAL, MINE), invoice(NO_DEAL, MINE)
        await publisher.publish_many([theirs, unknown])
        await events.wait_for(
            lambda seen: all(final_lifecycle(seen, c.task_id) for c in (theirs, unknown)),
            timeout=60,
        )
        # Then each organization's own first invoice.
        mine, their_own = invoice(MY_DEAL, MINE), invoice(THEIR_DEAL, THEIRS)
        await publisher.publish_many([mine, their_own])
        seen = await events.wait_for(
            lambda seen: all(final_lifecycle(seen, c.task_id) for c in (mine, their_own)),
            timeout=60,
        )

    outcomes = {
        c.task_id: final_lifecycle(seen, c.task_id) for c in (theirs, unknown, mine, their_own)
    }
    refused_theirs, refused_unknown = outcomes[theirs.task_id], outcomes[unknown.task_id]
    assert refused_theirs is not None
    assert refused_unknown is not None
    assert refused_unknown.status in ("FAILED", "DEAD_LETTERED")
    assert refused_theirs.status == refused_unknown.status
    assert refused_theirs.attempt == refused_unknown.attempt
    assert _retries(seen, theirs.task_id) == _retries(seen, unknown.task_id)
    assert (refused_theirs.error or "").replace(THEIR_DEAL, "<id>") == (
        refused_unknown.error or ""
    ).replace(NO_DEAL, "<id>")

    issued = [outcomes[mine.task_id], outcomes[their_own.task_id]]
    assert all(o is not None and o.status == "SUCCEEDED" for o in issued)
    numbers = [o.result["invoice_number"] for o in issued if o is not None and o.result]
    assert len(numbers) == 2
    assert all(n.endswith("-000001") for n in numbers)
    keys = sorted(o.result["file_key"] for o in issued if o is not None and o.result)
    assert _stored(_files_dir(files), "*.pdf") == keys
