"""``report.audit.generate``: deal, payment, user and security sections as JSON, CSV and HTML.

Progress is kept in the ``reports`` row, updated as each section completes. The whole report is
built in the message's one transaction, so another connection sees the row only once it is
complete (status ``completed``); the intermediate progress is visible within the transaction and
in the audit of how the report was built, not to pollers. A report big enough to need live
progress would be split into one message per section.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from deal_workflow.adapters.audit_log import verify_audit_log
from deal_workflow.adapters.report_files import FORMATS, RENDERERS, report_key
from deal_workflow.dependencies import Dependencies
from deal_workflow.domain.audit import chain_for
from deal_workflow.domain.checks import CLEAN
from deal_workflow.domain.money import round_money
from deal_workflow.domain.payments import paid_total, payment_status
from deal_workflow.domain.reports import SECTIONS_BY_TYPE, AuditReport, Section, progress_after
from deal_workflow.models import Deal, Report
from deal_workflow.service_layer.unit import Unit
from prs_shared.messaging.deals import (
    AUDIT_REPORT_GENERATED,
    AuditReportGenerated,
    GenerateAuditReport,
)
from prs_shared.messaging.handlers import HandlerContext


@dataclass(frozen=True)
class Window:
    """The period and scope a report covers."""

    start: datetime
    end: datetime
    organization_id: str | None


def _money(amount: Decimal, currency: str) -> str:
    return f"{round_money(amount, currency):f}"


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat()


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def payment_status_as_of(u: Unit, deals: Sequence[Deal], w: Window) -> dict[str, str]:
    """Each deal's payment status at the report's end, from the payments recorded by then.

    The stored status changes only when ``update_payment_status`` runs for the deal; a report
    read from it listed deals paid since then as unpaid. Payments in another currency than the
    deal's do not count, as for the stored status.
    """
    paid: dict[str, list[Decimal]] = defaultdict(list)
    currency = {d.deal_id: d.currency for d in deals}
    for p in await u.repo.payments_received(EPOCH, w.end, w.organization_id):
        if currency.get(p.deal_id) == p.currency:
            paid[p.deal_id].append(p.amount)
    return {
        d.deal_id: payment_status(
            d.value, paid_total(paid[d.deal_id]), d.due_date, w.end.date()
        ).value
        for d in deals
    }


async def deals_section(u: Unit, w: Window) -> Section:
    deals = await u.repo.deals(organization_id=w.organization_id, created_between=(w.start, w.end))
    status_of = await payment_status_as_of(u, deals, w)
    summary = {"deals created": str(len(deals))}
    for state, n in sorted(Counter(d.state for d in deals).items()):
        summary[f"state {state}"] = str(n)
    values: dict[str, Decimal] = defaultdict(Decimal)
    for d in deals:
        values[d.currency] += d.value
    for currency, total in sorted(values.items()):
        summary[f"total value {currency}"] = _money(total, currency)
    columns = (
        "deal_id",
        "organization_id",
        "client_name",
        "value",
        "currency",
        "state",
        "payment_status",
        "created_at",
        "due_date",
    )
    rows = [
        {
            "deal_id": d.deal_id,
            "organization_id": d.organization_id,
            "client_name": d.client_name,
            "value": _money(d.value, d.currency),
            "currency": d.currency,
            "state": d.state,
            "payment_status": status_of[d.deal_id],
            "created_at": _iso(d.created_at),
            "due_date": d.due_date.isoformat() if d.due_date else "",
        }
        for d in deals
    ]
    return Section("deals", "Deals", summary, columns, rows)


async def payments_section(u: Unit, w: Window) -> Section:
    payments = await u.repo.payments_received(w.start, w.end, w.organization_id)
    summary = {"payments received": str(len(payments))}
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for p in payments:
        totals[p.currency] += p.amount
    for currency, total in sorted(totals.items()):
        summary[f"received {currency}"] = _money(total, currency)
    all_deals = await u.repo.deals(organization_id=w.organization_id)
    status_of = await payment_status_as_of(u, all_deals, w)
    for status, n in sorted(Counter(status_of.values()).items()):
        summary[f"deals {status} now"] = str(n)
    columns = (
        "payment_id",
        "deal_id",
        "organization_id",
        "amount",
        "currency",
        "received_at",
        "method",
    )
    rows = [
        {
            "payment_id": p.payment_id,
            "deal_id": p.deal_id,
            "organization_id": p.organization_id,
            "amount": _money(p.amount, p.currency),
            "currency": p.currency,
            "received_at": _iso(p.received_at),
            "method": p.method,
        }
        for p in payments
    ]
    return Section("payments", "Payments", summary, columns, rows)


async def users_section(u: Unit, w: Window) -> Section:
    users = await u.repo.users(w.organization_id)
    summary = {
        "users": str(len(users)),
        "active": str(sum(1 for x in users if x.active)),
        "inactive": str(sum(1 for x in users if not x.active)),
    }
    for role, n in sorted(Counter(r for x in users for r in x.roles).items()):
        summary[f"role {role}"] = str(n)
    entries = await u.repo.audit_entries_between(w.start, w.end, w.organization_id)
    summary["user changes in period"] = str(sum(1 for e in entries if e.entity_type == "user"))
    columns = ("user_id", "organization_id", "full_name", "roles", "active")
    rows = [
        {
            "user_id": x.user_id,
            "organization_id": x.organization_id,
            "full_name": x.full_name,
            "roles": " ".join(sorted(x.roles)),
            "active": "yes" if x.active else "no",
        }
        for x in users
    ]
    return Section("users", "Users", summary, columns, rows)


def _security_finding(entry: Any) -> str | None:
    """Why an audit entry matters for security, or None."""
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    if entry.entity_type == "user":
        if not before:
            roles = after.get("roles") or []
            return f"user created with roles {', '.join(roles) or 'none'}"
        notes = []
        if before.get("roles") != after.get("roles"):
            notes.append(f"roles {before.get('roles')} -> {after.get('roles')}")
        if before.get("active") != after.get("active"):
            notes.append("deactivated" if not after.get("active") else "reactivated")
        return "; ".join(notes) or None
    if entry.entity_type == "attachment" and after.get("verdict") not in (None, CLEAN):
        return f"attachment {after.get('verdict')}: {after.get('reason', '')}".rstrip(": ")
    if entry.action == "deal.verify_deal" and after.get("outcome") == "failed":
        return "deal rejected: " + "; ".join(after.get("reasons") or [])
    return None


async def security_section(u: Unit, w: Window) -> Section:
    chain = chain_for(w.organization_id) if w.organization_id else None
    verdicts = await verify_audit_log(u.ctx.session, chain)
    entries = await u.repo.audit_entries_between(w.start, w.end, w.organization_id)
    summary = {
        "audit chains checked": str(len(verdicts)),
        "audit chains intact": str(sum(1 for v in verdicts if v.intact)),
        "audit entries checked": str(sum(v.entries_checked for v in verdicts)),
        "audit entries in period": str(len(entries)),
    }
    columns = ("occurred_at", "kind", "entity", "actor", "detail")
    rows = [
        {
            "occurred_at": "",
            "kind": "audit chain broken",
            "entity": v.chain,
            "actor": "",
            "detail": problem,
        }
        for v in verdicts
        for problem in v.problems
    ]
    for e in entries:
        finding = _security_finding(e)
        if finding:
            rows.append(
                {
                    "occurred_at": _iso(e.occurred_at),
                    "kind": e.action,
                    "entity": f"{e.entity_type} {e.entity_id}",
                    "actor": e.actor,
                    "detail": finding,
                }
            )
    summary["findings"] = str(len(rows))
    return Section("security", "Security", summary, columns, rows)


SECTION_BUILDERS: dict[str, Callable[[Unit, Window], Awaitable[Section]]] = {
    "deals": deals_section,
    "payments": payments_section,
    "users": users_section,
    "security": security_section,
}


async def generate_audit_report(
    command: GenerateAuditReport, ctx: HandlerContext, deps: Dependencies
) -> dict[str, Any]:
    u = Unit.of(ctx, deps)
    # Refused before anything is written: no report row, no file, no event.
    scope = u.scope(command.organization_id)
    now = u.now()
    # The task id names the report, so the caller that queued it can find it; a redelivery
    # after a rollback rebuilds the same report under the same keys.
    report_id = str(ctx.envelope.task_id or ctx.envelope.id)
    names = SECTIONS_BY_TYPE[command.report_type]
    u.repo.add(
        Report(
            report_id=report_id,
            report_type=command.report_type,
            organization_id=scope,
            days=command.days,
            status="running",
            progress=0,
            sections_done=[],
            files={},
            requested_at=now,
        )
    )
    await u.repo.flush()
    window = Window(now - timedelta(days=command.days), now, scope)
    sections: list[Section] = []
    for name in names:
        sections.append(await SECTION_BUILDERS[name](u, window))
        await u.repo.update_report(
            report_id,
            progress=progress_after(len(sections), len(names)),
            sections_done=[s.name for s in sections],
        )
    report = AuditReport(
        report_id=report_id,
        report_type=command.report_type,
        organization_id=scope,
        days=command.days,
        period_start=window.start,
        period_end=window.end,
        generated_at=now,
        sections=sections,
    )
    files: dict[str, str] = {}
    for fmt in FORMATS:
        key = report_key(report_id, fmt)
        await asyncio.to_thread(deps.files.put, key, RENDERERS[fmt](report))
        files[fmt] = key
    await u.repo.update_report(
        report_id, status="completed", progress=100, files=files, completed_at=now
    )
    ctx.caused(
        AUDIT_REPORT_GENERATED.type,
        AuditReportGenerated(
            report_id=report_id,
            organization_id=scope,
            report_type=command.report_type,
            days=command.days,
            files=files,
        ),
        organization_id=scope,
    )
    return {
        "report_id": report_id,
        "report_type": command.report_type,
        "status": "completed",
        "files": files,
        "sections": {s.name: s.summary for s in sections},
    }
