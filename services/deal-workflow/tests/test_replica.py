"""The replica follows PRS snapshots by version and audits what it applies."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from deal_workflow.adapters.audit_log import verify_audit_log
from deal_workflow.models import AttachmentVerdict, AuditEntry, Deal, Organization, Payment, User
from deal_workflow.testing import Harness, deal, organization, payment, user
from prs_shared.messaging import prs_events as prs
from prs_shared.messaging.deals import PROCESS_DEAL_WORKFLOW
from prs_shared.messaging.files import FILE_PROCESSED, FILE_REJECTED, FileProcessed, FileRejected


async def test_an_older_snapshot_never_overwrites_a_newer_one(harness: Harness) -> None:
    await harness.given(
        (prs.ORGANIZATION_CHANGED, organization(name="Acme v2", version=2)),
    )
    stale = await harness.handle(prs.ORGANIZATION_CREATED, organization(name="Acme v1"))
    same = await harness.handle(
        prs.ORGANIZATION_CHANGED, organization(name="Acme again", version=2)
    )
    newer = await harness.handle(prs.ORGANIZATION_CHANGED, organization(name="Acme v3", version=3))
    assert stale.result is not None
    assert stale.result["applied"] is False
    assert same.result is not None
    assert same.result["applied"] is False
    assert newer.result is not None
    assert newer.result["applied"] is True
    async with harness.sessions() as session:
        org = await session.get(Organization, "org-1")
    assert org is not None
    assert (org.name, org.version) == ("Acme v3", 3)


async def test_users_and_deals_follow_versions_and_deal_changes_keep_the_workflow_state(
    harness: Harness,
) -> None:
    await harness.given(
        (prs.USER_CREATED, user(roles=["salesperson"])),
        (prs.USER_CHANGED, user(roles=["salesperson", "admin"], version=3)),
        (prs.USER_CHANGED, user(roles=[], active=False, version=2)),  # late, ignored
        (prs.DEAL_CREATED, deal(value="1000.00")),
    )
    async with harness.sessions() as session, session.begin():
        row = await session.get(Deal, "deal-1")
        assert row is not None
        row.state = "verified"
    await harness.given((prs.DEAL_CHANGED, deal(value="1500.50", version=2)))
    async with harness.sessions() as session:
        u = await session.get(User, "sp-1")
        d = await session.get(Deal, "deal-1")
        change = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "deal.changed"))
        ).scalar_one()
    assert u is not None
    assert (u.roles, u.active, u.version) == (["admin", "salesperson"], True, 3)
    assert d is not None
    assert (d.value, d.state, d.version) == (Decimal("1500.5"), "verified", 2)
    # The audit entry of a money change shows just what changed.
    assert change.before == {"value": "1000.0000"}
    assert change.after == {"value": "1500.5000"}


async def test_a_payment_is_recorded_once_however_often_it_arrives(harness: Harness) -> None:
    first = await harness.handle(prs.PAYMENT_RECORDED, payment("p-1", amount="10.00"))
    again = await harness.handle(prs.PAYMENT_RECORDED, payment("p-1", amount="10.00"))
    assert first.result is not None
    assert first.result["applied"] is True
    assert again.result is not None
    assert again.result["applied"] is False
    async with harness.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == 1


async def test_a_new_payment_queues_its_deals_payment_status_update_once(
    harness: Harness,
) -> None:
    await harness.given((prs.DEAL_CREATED, deal("deal-1")))
    first = await harness.handle(prs.PAYMENT_RECORDED, payment("p-1", amount="10.00"))
    again = await harness.handle(prs.PAYMENT_RECORDED, payment("p-1", amount="10.00"))
    other = await harness.handle(prs.PAYMENT_RECORDED, payment("p-2", amount="5.00"))
    [command] = first.events
    assert command.type == PROCESS_DEAL_WORKFLOW.type
    assert command.payload == {
        "deal_id": "deal-1",
        "workflow_action": "update_payment_status",
        "user_id": None,
    }
    assert command.organization_id == "org-1"
    assert first.result is not None
    assert first.result["payment_status_update"] == str(command.task_id)
    assert again.events == []
    # Another payment is another task; the same payment would have had the same ids.
    [following] = other.events
    assert (following.id, following.task_id) != (command.id, command.task_id)


async def test_a_payment_on_a_rejected_deal_queues_nothing(harness: Harness) -> None:
    await harness.given((prs.DEAL_CREATED, deal("deal-1")))
    async with harness.sessions() as session, session.begin():
        stored = await session.get(Deal, "deal-1")
        assert stored is not None
        stored.state = "rejected"
    handled = await harness.handle(prs.PAYMENT_RECORDED, payment("p-1"))
    assert handled.events == []
    assert handled.result is not None
    assert handled.result["payment_status_update"] == "none: the deal is rejected"


async def test_a_payment_before_its_deal_queues_the_update_all_the_same(harness: Harness) -> None:
    handled = await harness.handle(prs.PAYMENT_RECORDED, payment("p-1", deal_id="deal-9"))
    [command] = handled.events
    assert command.payload["deal_id"] == "deal-9"


async def test_attachment_verdicts_are_kept_and_profile_pictures_ignored(harness: Harness) -> None:
    await harness.given(
        (
            FILE_PROCESSED,
            FileProcessed(
                file_id="f-1",
                file_type="deal_attachment",
                variants={},
                deal_id="deal-1",
                scan="clean",
            ),
        ),
        (
            FILE_PROCESSED,
            FileProcessed(
                file_id="avatar",
                file_type="profile_picture",
                variants={},
                user_id="u",
                scan="clean",
            ),
        ),
        (
            FILE_REJECTED,
            FileRejected(
                file_type="deal_attachment",
                original_filename="invoice.pdf.exe",
                reason="executable disguised as PDF",
                deal_id="deal-1",
            ),
        ),
    )
    async with harness.sessions() as session:
        rows = (
            (await session.execute(select(AttachmentVerdict).order_by(AttachmentVerdict.id)))
            .scalars()
            .all()
        )
        verdicts = await verify_audit_log(session)
    assert [(r.file_id, r.verdict) for r in rows] == [("f-1", "clean"), (None, "rejected")]
    assert all(v.intact for v in verdicts)
