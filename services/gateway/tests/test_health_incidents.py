"""When the operators are emailed: one email when an incident (unhealthy) begins, one when it
ends, none while the status stays on one side of it."""

from __future__ import annotations

import pytest

from gateway.health_monitor import check_results, notification_for
from prs_shared.messaging.notifications import NotificationType

UNHEALTHY = NotificationType.SYSTEM_UNHEALTHY
RECOVERED = NotificationType.SYSTEM_RECOVERED


@pytest.mark.parametrize(
    ("previous", "current", "told"),
    [
        (None, "healthy", None),
        (None, "degraded", None),
        (None, "unhealthy", UNHEALTHY),  # unhealthy from the very first check
        ("healthy", "unhealthy", UNHEALTHY),
        ("degraded", "unhealthy", UNHEALTHY),
        ("unhealthy", "unhealthy", None),  # the same incident: no second email
        ("unhealthy", "healthy", RECOVERED),
        ("unhealthy", "degraded", RECOVERED),
        ("healthy", "degraded", None),  # degraded alone emails nobody
        ("degraded", "healthy", None),
        ("healthy", "healthy", None),
    ],
)
def test_the_operators_are_told_when_an_incident_begins_and_when_it_ends(
    previous: str | None, current: str, told: NotificationType | None
) -> None:
    assert notification_for(previous, current) is told


def test_a_run_of_checks_sends_one_incident_and_one_recovery_email() -> None:
    statuses = ["healthy", "degraded", "unhealthy", "unhealthy", "unhealthy", "degraded", "healthy"]
    sent = [
        kind
        for previous, current in zip([None, *statuses], statuses, strict=False)
        if (kind := notification_for(previous, current)) is not None
    ]
    assert sent == [UNHEALTHY, RECOVERED]


def test_the_per_check_gauge_leaves_out_what_is_not_configured() -> None:
    checks = {
        "database": {"status": "ok"},
        "broker": {"status": "error"},
        "smtp": {"status": "not_configured"},
        "clamav": {"status": "ok"},
        "disk": {"status": "low"},
        "services": {"gateway": {"status": "up"}, "notifier": {"status": "down"}},
    }
    assert check_results(checks) == {
        "database": True,
        "broker": False,
        "clamav": True,
        "disk": False,
        "services": False,
    }
