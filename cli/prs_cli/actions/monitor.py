"""``--action=monitor``: queues, workers and the system's health, as Celery's inspect shows them."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from prs_cli.actions.context import ActionContext
from prs_cli.client import API_PREFIX, GatewayClient
from prs_cli.errors import GatewayError
from prs_cli.records import Cell, render_records

QUEUES_PATH = f"{API_PREFIX}/queues/"
WORKERS_PATH = f"{API_PREFIX}/workers/"
HEALTH_PATH = "/api/automated-processes/system-health/"
UNHEALTHY = "unhealthy"
_HEALTH_STYLES = {"healthy": "green", "degraded": "yellow", UNHEALTHY: "bold red"}


def run(ctx: ActionContext) -> int:
    """Show the three views; exit 1 when the gateway reports the system unhealthy."""
    if ctx.options.dry_run:
        urls = [ctx.config.gateway_url + p for p in (QUEUES_PATH, WORKERS_PATH, HEALTH_PATH)]
        if ctx.output.json_mode:
            ctx.output.json(
                {"dry_run": True, "requests": [{"method": "GET", "url": u} for u in urls]}
            )
        else:
            for url in urls:
                ctx.output.line(f"dry run: would GET {url}")
        return 0
    if ctx.options.watch:
        return watch(ctx)
    queues, workers, health = snapshot(ctx.client())
    if ctx.output.json_mode:
        ctx.output.json({"queues": queues, "workers": workers, "health": health})
    else:
        ctx.output.render(render_queues(ctx.output.out, queues))
        ctx.output.render(render_workers(ctx.output.out, workers))
        ctx.output.render(render_health(health))
    if health["status"] == UNHEALTHY:
        reasons = "; ".join(str(r) for r in health.get("reasons") or []) or "no reason given"
        ctx.output.error(f"the system is unhealthy: {reasons}")
        return 1
    return 0


def snapshot(
    client: GatewayClient,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Queues, workers and health as the gateway reports them now."""
    queues = _list(client.get_json(QUEUES_PATH), "queues")
    workers = _list(client.get_json(WORKERS_PATH), "workers")
    # An unhealthy system answers 503 with the same report: that is the answer, not an error.
    health = client.get_json(HEALTH_PATH, accept=(503,))
    if not isinstance(health, dict) or "status" not in health:
        raise GatewayError("unexpected answer from system-health")
    return queues, workers, health


def watch(ctx: ActionContext, sleep: Callable[[float], None] = time.sleep) -> int:
    """Redraw the three views every ``--interval`` seconds until Ctrl-C (or ``--iterations``).

    In JSON mode each refresh is one compact JSON line, for a program that follows the stream.
    A gateway that stops answering is shown in the view and retried, not the end of the watch.
    """
    opts = ctx.options
    client = ctx.client()
    count = 0

    def frame() -> RenderableType:
        now = datetime.now(UTC).strftime("%H:%M:%S UTC")
        header = Text(f"prs monitor — {client.base_url} — {now} — Ctrl-C to stop", style="dim")
        try:
            queues, workers, health = snapshot(client)
        except GatewayError as exc:
            return Group(header, Text(f"gateway: {exc.message}", style="bold red"))
        out = ctx.output.out
        return Group(
            header, render_queues(out, queues), render_workers(out, workers), render_health(health)
        )

    try:
        if ctx.output.json_mode:
            while opts.iterations is None or count < opts.iterations:
                if count:
                    sleep(opts.interval)
                try:
                    queues, workers, health = snapshot(client)
                    line: dict[str, Any] = {"queues": queues, "workers": workers, "health": health}
                except GatewayError as exc:
                    line = {"error": exc.message}
                sys.stdout.write(json.dumps(line, default=str) + "\n")
                sys.stdout.flush()
                count += 1
            return 0
        with Live(frame(), console=ctx.output.out, auto_refresh=False, screen=False) as live:
            count = 1
            while opts.iterations is None or count < opts.iterations:
                sleep(opts.interval)
                live.update(frame(), refresh=True)
                count += 1
    except KeyboardInterrupt:
        # Ctrl-C is how a watch ends: not an error.
        return 0
    return 0


def render_queues(console: Console, queues: Sequence[Mapping[str, Any]]) -> RenderableType:
    """Depth, consumers, in-flight, dead letters and throughput per queue."""
    rows: list[list[Cell]] = []
    for q in queues:
        consumers = q.get("consumers")
        dead = q.get("dead_letters_waiting")
        rows.append(
            [
                str(q.get("name", "?")),
                _count(q.get("ready")),
                # A queue nobody consumes is the first thing to notice.
                Text(_count(consumers), style="red" if consumers == 0 else ""),
                _count(q.get("in_flight")),
                Text(_count(dead), style="red" if dead else ""),
                f"{float(q.get('completed_per_minute') or 0):.1f}",
            ]
        )
    columns = ("queue", "ready", "consumers", "in flight", "dead letters", "completed/min")
    return render_records(console, "queues", columns, rows, right=range(1, 6))


def render_workers(
    console: Console,
    workers: Sequence[Mapping[str, Any]],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RenderableType:
    """Every service instance that sent a heartbeat."""
    current = now()
    rows: list[list[Cell]] = []
    for w in workers:
        alive = bool(w.get("alive"))
        rows.append(
            [
                str(w.get("service", "?")),
                str(w.get("worker", "?")),
                Text("yes" if alive else "no", style="green" if alive else "red"),
                _count(w.get("in_flight")),
                _count(w.get("processed")),
                _ago(w.get("last_seen"), current),
            ]
        )
    columns = ("service", "worker", "alive", "in flight", "processed", "last seen")
    return render_records(
        console, "workers", columns, rows, empty="no heartbeats yet", right=(3, 4)
    )


def render_health(health: Mapping[str, Any]) -> Text:
    """The overall status and, when it is not healthy, why."""
    status = str(health.get("status", "?"))
    text = Text("system health: ")
    text.append(status, style=_HEALTH_STYLES.get(status, "yellow"))
    for reason in health.get("reasons") or []:
        text.append(f"\n  - {reason}")
    return text


def _list(body: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise GatewayError(f"unexpected answer from the {what} endpoint")
    return body


def _count(value: Any) -> str:
    return "-" if value is None else str(value)


def _ago(value: Any, now: datetime) -> str:
    if not isinstance(value, str):
        return "-"
    try:
        seen = datetime.fromisoformat(value)
    except ValueError:
        return value
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    seconds = max((now - seen).total_seconds(), 0.0)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return seen.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
