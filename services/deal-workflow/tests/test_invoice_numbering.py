"""Invoice numbers stay sequential and gap-free with two service instances issuing at once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy import select, update

from deal_workflow.adapters.audit_log import verify_audit_log
from deal_workflow.adapters.clock import FixedClock
from deal_workflow.adapters.pdf import FpdfInvoiceRenderer
from deal_workflow.dependencies import Dependencies
from deal_workflow.models import Deal, Invoice, InvoiceCounter, Organization
from deal_workflow.settings import DealWorkflowSettings
from deal_workflow.testing import NOW, deal, organization, user, workflow
from prs_shared.messaging import deals as dw
from prs_shared.messaging import prs_events as prs
from prs_shared.messaging.deals import WorkflowAction as A
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.publisher import Publisher
from prs_shared.service import ServiceHost
from prs_shared.storage import LocalFileStore
from prs_shared.testing.fixtures import PgDatabases, eventually

INVOICES = 20


async def test_two_instances_issue_twenty_invoices_without_gap_or_duplicate(
    pg_databases: PgDatabases,
    service_settings: Callable[..., DealWorkflowSettings],
    start_service: Callable[..., AbstractAsyncContextManager[ServiceHost]],
    publisher: Publisher,
    tap: Any,
) -> None:
    url = await pg_databases.create()
    settings = service_settings(url, prefetch=3)
    deps = Dependencies(
        FixedClock(NOW), LocalFileStore(settings.resolved_file_store_dir()), FpdfInvoiceRenderer()
    )
    ids = [f"deal-{i:02d}" for i in range(INVOICES)]
    events = await tap(dw.INVOICE_GENERATED.type)
    # Started one after the other: the first migrates the database.
    async with start_service(settings, deps) as first, start_service(settings, deps) as second:
        facts = [
            (prs.ORGANIZATION_CREATED, organization()),
            (prs.USER_CREATED, user()),
            *((prs.DEAL_CREATED, deal(i, client_id=f"c-{i}")) for i in ids),
        ]
        await publisher.publish_many(
            Envelope(type=spec.type, payload=p.model_dump(mode="json")) for spec, p in facts
        )

        async def all_replicated() -> bool:
            async with first.sessions() as session:
                deals = len((await session.execute(select(Deal.deal_id))).all())
                org = await session.get(Organization, "org-1")
            return deals == INVOICES and org is not None

        await eventually(all_replicated, message="deals replicated")
        async with first.sessions() as session, session.begin():
            await session.execute(update(Deal).values(state="verified"))

        before = (first.runtime.processed, second.runtime.processed)
        await publisher.publish_many(
            Envelope(
                type=dw.PROCESS_DEAL_WORKFLOW.type,
                payload=workflow(i, A.GENERATE_INVOICE).model_dump(mode="json"),
                task_id=uuid.uuid4(),
            )
            for i in ids
        )
        await events.wait_for(lambda seen: len(seen) >= INVOICES, timeout=60)
        handled = (
            first.runtime.processed - before[0],
            second.runtime.processed - before[1],
        )
        async with first.sessions() as session:
            invoices = (await session.execute(select(Invoice))).scalars().all()
            counter = (await session.execute(select(InvoiceCounter))).scalar_one()
            chains = await verify_audit_log(session)

    assert sorted(inv.sequence for inv in invoices) == list(range(1, INVOICES + 1))
    assert len({inv.number for inv in invoices}) == INVOICES
    assert sorted(inv.deal_id for inv in invoices) == ids
    assert counter.last_number == INVOICES
    assert all(deps.files.exists(inv.file_key) for inv in invoices)
    assert sum(handled) == INVOICES
    assert min(handled) > 0, handled  # both instances took part
    assert all(c.intact for c in chains)
