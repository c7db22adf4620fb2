"""Through RabbitMQ: PRS events in, a verified deal, its commission and its invoice PDF out."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from pypdf import PdfReader
from sqlalchemy import select

from deal_workflow.adapters.clock import FixedClock
from deal_workflow.adapters.pdf import FpdfInvoiceRenderer
from deal_workflow.dependencies import Dependencies
from deal_workflow.models import Commission, Deal, Organization, User
from deal_workflow.settings import DealWorkflowSettings
from deal_workflow.testing import NOW, deal, organization, tiered_policy, user, workflow
from prs_shared.messaging import deals as dw
from prs_shared.messaging import prs_events as prs
from prs_shared.messaging.catalog import MessageSpec
from prs_shared.messaging.deals import WorkflowAction as A
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.messages import TaskLifecycle
from prs_shared.messaging.publisher import Publisher
from prs_shared.service import ServiceHost
from prs_shared.storage import LocalFileStore
from prs_shared.testing.fixtures import eventually, final_lifecycle


def envelope(spec: MessageSpec, payload: BaseModel, **fields: Any) -> Envelope:
    return Envelope(type=spec.type, payload=payload.model_dump(mode="json"), **fields)


def succeeded(events: list[Envelope], task_id: uuid.UUID) -> dict | None:
    for e in events:
        if e.type == "task.succeeded" and e.task_id == task_id:
            return TaskLifecycle.model_validate(e.payload).result
    return None


async def test_prs_events_become_a_verified_deal_with_commission_and_invoice(
    database_url: str,
    service_settings: Callable[..., DealWorkflowSettings],
    start_service: Callable[..., AbstractAsyncContextManager[ServiceHost]],
    publisher: Publisher,
    tap: Any,
) -> None:
    settings = service_settings(database_url)
    files = LocalFileStore(settings.resolved_file_store_dir())
    deps = Dependencies(FixedClock(NOW), files, FpdfInvoiceRenderer())
    policy = tiered_policy(("10000", "0.05"), (None, "0.08"))
    events = await tap("deal.#", "task.#")
    async with start_service(settings, deps) as host:
        await publisher.publish_many(
            [
                envelope(
                    prs.ORGANIZATION_CREATED, organization(policy=policy), organization_id="org-1"
                ),
                envelope(prs.USER_CREATED, user(), organization_id="org-1"),
                envelope(prs.DEAL_CREATED, deal(value="12500.00"), organization_id="org-1"),
            ]
        )

        # Events are handled concurrently and may commit in any order; verification needs all
        # three facts, so the commands wait for the replica.
        async def replicated() -> bool:
            async with host.sessions() as session:
                rows = [
                    await session.get(Organization, "org-1"),
                    await session.get(User, "sp-1"),
                    await session.get(Deal, "deal-1"),
                ]
            return all(r is not None for r in rows)

        await eventually(replicated, message="organization, user and deal replicated")

        results = {}
        for action, outcome_type in (
            (A.VERIFY_DEAL, dw.DEAL_VERIFIED.type),
            (A.CALCULATE_COMMISSION, dw.COMMISSION_CALCULATED.type),
            (A.GENERATE_INVOICE, dw.INVOICE_GENERATED.type),
        ):
            command = envelope(
                dw.PROCESS_DEAL_WORKFLOW,
                workflow("deal-1", action),
                organization_id="org-1",
                task_id=uuid.uuid4(),
            )
            await publisher.publish(command)
            seen = await events.wait_for(
                lambda s, c=command, t=outcome_type: (
                    succeeded(s, c.task_id) is not None
                    and any(e.type == t and e.causation_id == c.id for e in s)
                )
            )
            results[action] = succeeded(seen, command.task_id)

        # A second invoice is not allowed: the task fails at once, naming state and action.
        again = envelope(
            dw.PROCESS_DEAL_WORKFLOW,
            workflow("deal-1", A.GENERATE_INVOICE),
            organization_id="org-1",
            task_id=uuid.uuid4(),
        )
        await publisher.publish(again)
        seen = await events.wait_for(lambda s: final_lifecycle(s, again.task_id) is not None)
        failure = final_lifecycle(seen, again.task_id)

        async with host.sessions() as session:
            commission = (await session.execute(select(Commission))).scalar_one()
            row = await session.get(Deal, "deal-1")
            assert row is not None
            state = row.state

    assert results[A.VERIFY_DEAL]["state"] == "verified"
    # 10000 * 5% + 2500 * 8%
    assert results[A.CALCULATE_COMMISSION]["amount"] == "700.00"
    assert commission.amount == Decimal("700")
    invoice = results[A.GENERATE_INVOICE]
    assert invoice["invoice_number"] == "INV-2026-000001"
    assert invoice["file_key"] == "invoices/org-1/2026/INV-2026-000001.pdf"
    assert state == "invoiced"
    announced = next(e for e in events.seen if e.type == dw.INVOICE_GENERATED.type)
    assert announced.payload["file_key"] == invoice["file_key"]
    assert announced.organization_id == "org-1"

    assert failure is not None
    assert failure.status == "FAILED"
    assert failure.attempt == 1
    assert failure.error is not None
    assert "'generate_invoice'" in failure.error
    assert "'invoiced'" in failure.error

    pdf = files.get(invoice["file_key"])
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    assert "INV-2026-000001" in reader.pages[0].extract_text()
    assert reader.metadata is not None
    assert reader.metadata.title == "Invoice INV-2026-000001"
