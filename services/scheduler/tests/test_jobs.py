"""The schedule table, its configuration from the environment, and the message of a run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from prs_shared.messaging import catalog
from prs_shared.messaging.deals import GenerateAuditReport
from prs_shared.messaging.envelope import Envelope, Priority
from prs_shared.messaging.schedule import ScheduleTick
from scheduler.jobs import JOBS, envelope_for, seeds
from scheduler.settings import SchedulerSettings

AT = datetime(2026, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 1, 0, 0, 1, tzinfo=UTC)
BY_NAME = {job.name: job for job in JOBS}


def test_the_table_is_the_seeds_beat_schedule_in_utc_cron() -> None:
    assert {job.name: (job.cron, job.message.type) for job in JOBS} == {
        "deal_verification_reminders": ("0 0 * * *", "process.verification_reminders.run"),
        "commission_calculation": ("0 */6 * * *", "process.commission_calculation.run"),
        "audit_report_generation": ("0 0 * * 0", "report.audit.generate"),
        "overdue_detection": ("0 1 * * *", "process.overdue_detection.run"),
        "system_cleanup": ("0 * * * *", "schedule.session_cleanup"),
        "health_monitoring": ("*/5 * * * *", "schedule.system_health_check"),
        "task_monitoring": ("*/10 * * * *", "schedule.task_monitoring"),
        "failed_task_cleanup": ("0 * * * *", "schedule.failed_task_cleanup"),
    }


def test_a_command_run_is_a_task_for_all_organizations_at_medium_priority() -> None:
    envelope = envelope_for(BY_NAME["commission_calculation"], AT, now=NOW)
    assert envelope.type == "process.commission_calculation.run"
    assert catalog.lookup(envelope.type).queue == "business_processes"
    assert envelope.task_id is not None
    assert envelope.priority is Priority.MEDIUM
    assert envelope.organization_id is None
    assert envelope.occurred_at == NOW
    assert envelope.payload == {"organization_id": None}


def test_the_weekly_audit_report_covers_seven_days_comprehensively() -> None:
    envelope = envelope_for(BY_NAME["audit_report_generation"], AT, now=NOW)
    report = GenerateAuditReport.model_validate(envelope.payload)
    assert (report.report_type, report.days) == ("comprehensive", 7)
    assert catalog.lookup(envelope.type).queue == "reports"


def test_a_housekeeping_run_is_a_timed_event_naming_its_job_and_time() -> None:
    envelope = envelope_for(BY_NAME["health_monitoring"], AT, now=NOW)
    assert catalog.lookup(envelope.type).kind == "event"
    assert envelope.type == "schedule.system_health_check"
    assert envelope.task_id is None
    assert ScheduleTick.model_validate(envelope.payload) == ScheduleTick(
        job="health_monitoring", scheduled_for=AT
    )


def test_each_run_gets_a_fresh_task_but_the_same_time_keeps_its_message_id() -> None:
    job = BY_NAME["deal_verification_reminders"]
    first, again = envelope_for(job, AT, now=NOW), envelope_for(job, AT, now=NOW)
    later = envelope_for(job, datetime(2026, 3, 2, tzinfo=UTC), now=NOW)
    assert first.task_id != again.task_id
    assert first.id == again.id
    assert later.id != first.id


def test_a_manual_run_continues_the_journey_of_the_request() -> None:
    request = Envelope(type="schedule.run_now", payload={"job": "overdue_detection"})
    envelope = envelope_for(BY_NAME["overdue_detection"], AT, now=NOW, caused_by=request)
    assert envelope.correlation_id == request.correlation_id
    assert envelope.causation_id == request.id


def test_jobs_can_be_seeded_switched_off_and_rescheduled() -> None:
    seeded = seeds({"task_monitoring"}, {"overdue_detection": "30 2 * * *"})
    assert set(seeded) == set(BY_NAME)
    assert seeded["task_monitoring"] == ("*/10 * * * *", False)
    assert seeded["overdue_detection"] == ("30 2 * * *", True)
    assert seeded["commission_calculation"] == ("0 */6 * * *", True)


def test_the_earlier_names_of_renamed_jobs_are_still_understood() -> None:
    seeded = seeds({"session_cleanup"}, {"system_health_check": "*/15 * * * *"})
    assert seeded["system_cleanup"] == ("0 * * * *", False)
    assert seeded["health_monitoring"] == ("*/15 * * * *", True)


def test_settings_read_disabled_jobs_and_cron_overrides_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRS_SCHEDULER_DISABLED_JOBS", "system_cleanup, task_monitoring")
    monkeypatch.setenv("PRS_SCHEDULER_JOB_CRONS", '{"commission_calculation": "0 */3 * * *"}')
    monkeypatch.setenv("PRS_SCHEDULER_TICK_SECONDS", "0.5")
    monkeypatch.setenv("PRS_SCHEDULER_LEASE_SECONDS", "30")
    settings = SchedulerSettings()
    assert settings.disabled_jobs == {"system_cleanup", "task_monitoring"}
    assert (settings.tick_seconds, settings.lease_seconds) == (0.5, 30)
    seeded = settings.seeds()
    assert seeded["commission_calculation"] == ("0 */3 * * *", True)
    assert seeded["system_cleanup"] == ("0 * * * *", False)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PRS_SCHEDULER_DISABLED_JOBS", "system_cleanup,no_such_job"),
        ("PRS_SCHEDULER_JOB_CRONS", '{"no_such_job": "0 * * * *"}'),
        ("PRS_SCHEDULER_JOB_CRONS", '{"overdue_detection": "every day"}'),
    ],
)
def test_a_misspelt_job_or_a_bad_cron_expression_stops_the_service_at_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        SchedulerSettings()
