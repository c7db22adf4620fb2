"""Who the registry's committed changes wake: console streams of the organization (or of all),
and status requests waiting for that very task."""

from __future__ import annotations

import pytest

from gateway.task_feed import TaskFeed

pytestmark = pytest.mark.asyncio


async def test_a_change_wakes_its_organizations_streams_and_its_tasks_waiters_only() -> None:
    feed = TaskFeed()
    with (
        feed.listen("org-a") as a,
        feed.listen("org-b") as b,
        feed.listen(None) as every,
        feed.watch("t-1") as t1,
        feed.watch("t-2") as t2,
    ):
        feed.changed({"org-a"}, {"t-1": "org-a"})
        assert (a.qsize(), b.qsize(), every.qsize()) == (1, 0, 1)
        assert (t1.is_set(), t2.is_set()) == (True, False)
        # Changes coalesce: a stream holds one pending wake-up, however many changes came.
        feed.changed({"org-a"}, ["t-1"])
        assert a.qsize() == 1


async def test_a_waiter_that_left_is_forgotten() -> None:
    feed = TaskFeed()
    with feed.watch("t-1") as first:
        pass
    with feed.watch("t-1") as second:
        feed.changed({None}, ["t-1"])
        assert second.is_set()
    assert not first.is_set()
