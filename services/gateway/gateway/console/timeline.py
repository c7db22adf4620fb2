"""A task's page timeline: its recorded history as lines a person reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.api.schemas import TaskEventResponse, TaskStatusResponse
from prs_shared.messaging.messages import TaskStatus


@dataclass(frozen=True)
class Step:
    """One line of the timeline; ``kind`` is the state's name, for styling and for tests."""

    kind: str
    label: str
    at: datetime | None
    detail: str = ""
    error: str | None = None


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "soon"


def step(event: TaskEventResponse) -> Step:
    """The line of one recorded step."""
    detail = event.detail
    kind = event.status.value.lower()
    if event.status == TaskStatus.QUEUED:
        how = detail.get("how")
        label = f"queued again ({how})" if how else "queued"
        who = f" by {detail['by']}" if detail.get("by") else ""
        return Step(kind, label, event.at, f"on {detail.get('queue', '?')}{who}")
    worker = f"{detail.get('service', '')} on {event.worker}" if event.worker else ""
    if event.status == TaskStatus.STARTED:
        return Step(kind, f"started attempt {event.attempt}", event.at, worker)
    if event.status == TaskStatus.RETRYING:
        return Step(
            kind,
            f"attempt {event.attempt} failed, will retry",
            event.at,
            f"next attempt {_when(event.retry_at)}",
            event.error,
        )
    took = detail.get("duration_ms")
    timing = f" after {took:.0f} ms" if isinstance(took, int | float) else ""
    label = f"{kind.replace('_', ' ')} (attempt {event.attempt})"
    return Step(kind, label, event.at, f"{worker}{timing}".strip(), event.error)


def timeline(task: TaskStatusResponse, events: list[TaskEventResponse]) -> list[Step]:
    """The task's recorded history; for a task older than the history, what its row tells."""
    if events:
        return [step(e) for e in events]
    steps: list[Step] = []
    if task.queued_at:
        steps.append(Step("queued", "queued", task.queued_at, f"on {task.queue}"))
    if task.started_at:
        steps.append(Step("started", "started", task.started_at, task.worker or ""))
    if task.status == TaskStatus.RETRYING:
        steps.append(
            Step(
                "retrying",
                f"attempt {task.attempts} failed, will retry",
                task.updated_at,
                f"next attempt {_when(task.retry_at)}",
                task.error,
            )
        )
    if task.status.terminal:
        took = f"after {task.duration_ms:.0f} ms" if task.duration_ms else ""
        kind = task.status.value.lower()
        steps.append(Step(kind, kind.replace("_", " "), task.finished_at, took, task.error))
    return steps
