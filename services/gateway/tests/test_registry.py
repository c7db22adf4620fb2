"""The registry folds lifecycle events forward only, whatever order they arrive in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.registry import advance, registry_handlers
from prs_shared.messaging.messages import TaskLifecycle, TaskStatus
from prs_shared.messaging.registry_feed import REGISTRY_TYPES

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TASK = uuid.uuid4()


def event(status: TaskStatus, attempt: int = 1, seconds: int = 0, **extra: Any) -> TaskLifecycle:
    return TaskLifecycle(
        task_id=TASK,
        task_type="diagnostic.ping",
        status=status,
        queue="system",
        service="scheduler",
        worker="host:1",
        attempt=attempt,
        at=T0 + timedelta(seconds=seconds),
        **extra,
    )


def fold(events: list[TaskLifecycle]) -> dict[str, Any] | None:
    task: dict[str, Any] | None = None
    for e in events:
        changes = advance(task, e)
        if changes is not None:
            task = {**(task or {"started_at": None}), **changes}
    return task


S = TaskStatus


@pytest.mark.parametrize(
    ("arrivals", "final"),
    [
        ([event(S.STARTED), event(S.SUCCEEDED, seconds=1)], S.SUCCEEDED),
        ([event(S.SUCCEEDED, seconds=1), event(S.STARTED)], S.SUCCEEDED),
        ([event(S.STARTED), event(S.RETRYING), event(S.STARTED, 2)], S.STARTED),
        ([event(S.STARTED, 2), event(S.RETRYING, 1)], S.STARTED),
        ([event(S.RETRYING, 3), event(S.DEAD_LETTERED, 4), event(S.STARTED, 4)], S.DEAD_LETTERED),
        ([event(S.FAILED), event(S.SUCCEEDED)], S.FAILED),
        ([event(S.SUCCEEDED), event(S.SUCCEEDED)], S.SUCCEEDED),
        ([event(S.QUEUED), event(S.CANCELLED)], S.CANCELLED),
    ],
    ids=[
        "in-order",
        "finished-before-started-arrives",
        "retry-then-second-try",
        "stale-retry-after-second-try",
        "late-start-after-dead-letter",
        "first-final-status-wins",
        "duplicate-success",
        "cancelled-while-queued",
    ],
)
def test_a_task_only_moves_forward(arrivals: list[TaskLifecycle], final: TaskStatus) -> None:
    task = fold(arrivals)
    assert task is not None
    assert task["status"] == final.value


def test_a_final_status_records_result_error_and_finish_time() -> None:
    task = fold([event(S.STARTED), event(S.SUCCEEDED, seconds=2, result={"ok": 1})])
    assert task is not None
    assert task["result"] == {"ok": 1}
    assert task["finished_at"] == T0 + timedelta(seconds=2)
    assert task["started_at"] == T0
    assert task["attempts"] == 1


def test_the_registry_folds_every_type_its_queue_is_bound_to_and_no_other() -> None:
    assert sorted(registry_handlers().types()) == sorted(REGISTRY_TYPES)
