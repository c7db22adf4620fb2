"""``schedule.run_now``: an operator runs a job at once, through the run table and the outbox."""

from __future__ import annotations

import uuid
from typing import Any

from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.schedule import RUN_JOB_NOW
from prs_shared.messaging.topology import Topology
from prs_shared.testing.fixtures import eventually


def run_now(job: str, organization_id: str | None = None) -> Envelope:
    return Envelope(type=RUN_JOB_NOW.type, payload={"job": job}, organization_id=organization_id)


async def test_an_operator_runs_a_job_now_once_per_second(
    database_url: str,
    run_scheduler: Any,
    clock: Any,
    publisher: Any,
    broker_view: Any,
    kit: Any,
) -> None:
    async with run_scheduler(database_url, clock) as host:
        requests = [run_now("commission_calculation") for _ in range(2)]
        for request in requests:  # within one second: one run
            await publisher.publish(request)

        async def manual_run() -> list[Any]:
            return [r for r in await kit.all_runs(host.sessions) if r.source == "manual"]

        [run] = await eventually(manual_run, message="manual run recorded")
        assert run.job == "commission_calculation"
        assert run.scheduled_for == clock.now().replace(microsecond=0)

        async def published() -> list[Envelope]:
            return await broker_view.take("business_processes")

        [command] = await eventually(published, message="command published")
        assert str(command.id) == run.message_id
        assert str(command.task_id) == run.task_id
        # It continues the journey of whichever request got there first.
        assert (command.correlation_id, command.causation_id) in {
            (r.correlation_id, r.id) for r in requests
        }

        async def both_handled() -> bool:
            return host.runtime.processed >= 2

        await eventually(both_handled, message="both requests handled")
        assert len(await manual_run()) == 1

        clock.advance(seconds=1)
        await publisher.publish(run_now("commission_calculation"))

        async def two_commands() -> bool:
            return await broker_view.count("business_processes") == 2

        await eventually(two_commands, message="the next second runs again")
        assert len(await manual_run()) == 2


async def test_an_unknown_job_is_dead_lettered_at_once(
    database_url: str,
    run_scheduler: Any,
    clock: Any,
    publisher: Any,
    broker: Any,
    topology: Topology,
    kit: Any,
) -> None:
    async with run_scheduler(
        database_url, clock, disabled_jobs=frozenset({"system_cleanup"})
    ) as host:
        await publisher.publish(run_now("system_cleanup"))
        dlq = topology.dlq(topology.queue("system"))

        async def dead_lettered() -> bool:
            return (await broker.queue(dlq)).messages == 1

        await eventually(dead_lettered, message="disabled job refused")
        assert [r for r in await kit.all_runs(host.sessions) if r.source == "manual"] == []


async def test_a_caller_of_one_organization_cannot_run_a_job_of_every_organization(
    database_url: str,
    run_scheduler: Any,
    clock: Any,
    publisher: Any,
    broker_view: Any,
    kit: Any,
    tap: Any,
) -> None:
    """A job covers all organizations; to a scoped caller it is as unknown as a made-up one."""
    events = await tap("task.#")
    real = run_now("commission_calculation", "org-1").model_copy(update={"task_id": uuid.uuid4()})
    made_up = run_now("no_such_job", "org-1").model_copy(update={"task_id": uuid.uuid4()})
    async with run_scheduler(database_url, clock) as host:
        await publisher.publish_many([real, made_up])

        def failures(seen: list[Envelope]) -> dict[Any, str]:
            return {e.task_id: e.payload["error"] for e in seen if e.type == "task.failed"}

        await events.wait_for(lambda seen: len(failures(seen)) == 2)
        assert [r for r in await kit.all_runs(host.sessions) if r.source == "manual"] == []
        assert await broker_view.count("business_processes") == 0
    errors = failures(events.seen)
    assert errors[real.task_id].replace("commission_calculation", "<job>") == errors[
        made_up.task_id
    ].replace("no_such_job", "<job>")
