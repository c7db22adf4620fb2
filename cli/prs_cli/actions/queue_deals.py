"""``--action=queue --task-type=deal_processing`` without ``--deal-id``: every deal awaiting an
action gets one.

Deals belong to deal-workflow, which offers no API to list them, and the gateway never sees a
deal except as the id inside a task. What the command can know are the deals ``prs seed-demo``
loads (their ids follow from the prefix, ``demo`` unless ``PRS_DEMO_PREFIX`` says otherwise).
Each of them gets the next workflow action — ``--workflow-action``, ``verify_deal`` by default —
which deal-workflow handles idempotently, so queuing it again for a deal verified already
changes nothing there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from prs_cli.actions.context import ActionContext
from prs_cli.errors import UsageError
from prs_cli.records import render_records

DEFAULT_PREFIX = "demo"


@dataclass(frozen=True)
class Deal:
    """A deal the command knows of, with its organization."""

    deal_id: str
    organization_id: str


def demo_prefix() -> str:
    """The prefix ``prs seed-demo`` was run with (``PRS_DEMO_PREFIX``, else ``demo``)."""
    return os.environ.get("PRS_DEMO_PREFIX", "").strip() or DEFAULT_PREFIX


def demo_organizations() -> list[tuple[str, str, str]]:
    """``(id, name, short name)`` of each demo organization."""
    from prs_cli.seed_demo import ORGANIZATIONS

    prefix = demo_prefix()
    return [(f"{prefix}-{o.short}", o.name, o.short) for o in ORGANIZATIONS]


def awaiting_deals(organization: str | None) -> list[Deal]:
    """The deals that await a workflow action, of one organization (an id) or all."""
    from prs_cli.seed_demo import build

    deals = [Deal(d.deal_id, d.organization_id) for d in build(demo_prefix()).deals]
    if organization is None:
        return deals
    mine = [d for d in deals if d.organization_id == organization]
    if not mine:
        known = ", ".join(f"{i} ({n})" for i, n, _ in demo_organizations())
        raise UsageError(
            f"no deals known for organization {organization!r}; known: {known}",
            param="--organization",
        )
    return mine


def run(ctx: ActionContext, spec: Any) -> int:
    """Queue the action for each deal with a progress bar; ``--dry-run`` lists them."""
    opts = ctx.options
    deals = awaiting_deals(opts.organization)
    plans = [
        spec.plan(replace(opts, deal_id=d.deal_id, organization=d.organization_id)) for d in deals
    ]
    if opts.wait:
        ctx.output.note(
            "--wait is ignored when queuing for every deal; follow them with --action=status"
        )
    if opts.dry_run:
        if ctx.output.json_mode:
            ctx.output.json(
                {
                    "dry_run": True,
                    "task_type": spec.name,
                    "requests": [
                        {"method": "POST", "url": ctx.config.gateway_url + p.path, "body": p.body}
                        for p in plans
                    ],
                }
            )
            return 0
        rows = [
            [d.deal_id, d.organization_id, p.summary.split(" on ")[0]]
            for d, p in zip(deals, plans, strict=True)
        ]
        ctx.output.render(
            render_records(
                ctx.output.out, "deals awaiting an action", ("deal", "organization", "action"), rows
            )
        )
        ctx.output.line(f"dry run: would queue {len(plans)} task(s); nothing was sent")
        return 0

    client = ctx.client()
    queued = []
    progress = ctx.output.progress("queuing")
    with progress:
        bar = progress.add_task("", total=len(plans))
        for deal, plan in zip(deals, plans, strict=True):
            progress.update(bar, description=deal.deal_id)
            queued.append((deal, client.queue(plan.path, plan.body, service=spec.service)))
            progress.advance(bar)
    if ctx.output.json_mode:
        ctx.output.json(
            {
                "task_type": spec.name,
                "tasks": [
                    {
                        "deal_id": d.deal_id,
                        "organization_id": d.organization_id,
                        "task_id": t.task_id,
                        "status": t.status,
                        "status_url": t.status_url,
                    }
                    for d, t in queued
                ],
            }
        )
        return 0
    rows = [[t.task_id, d.deal_id, d.organization_id, t.status] for d, t in queued]
    ctx.output.render(
        render_records(
            ctx.output.out, "queued", ("task id", "deal", "organization", "status"), rows
        )
    )
    ctx.output.line(f"queued {len(queued)} task(s)")
    return 0
