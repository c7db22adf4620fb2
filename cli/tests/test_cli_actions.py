"""``--action=queue``, ``monitor``, ``cleanup`` and the task list, against a scripted gateway."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, get_args

import httpx
import pytest

from prs_cli.actions.queue import CHOICES, TASK_TYPES
from prs_shared.messaging import deals, files
from prs_shared.messaging.deals import ReportType, WorkflowAction
from prs_shared.messaging.messages import PING
from prs_shared.messaging.notifications import SEND_NOTIFICATION, NotificationType

from .conftest import GATEWAY, KEY, SERVICES, assert_no_traceback, invoke, problem, task_state

Handler = Callable[[httpx.Request], httpx.Response]


class Router:
    """A gateway of scripted routes: ``(method, path) -> handler``; everything else is a 404.

    ``("GET", "*/status/")`` answers every task's status.
    """

    def __init__(self, routes: dict[tuple[str, str], Handler] | None = None) -> None:
        self.routes = dict(routes or {})
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return problem(401, "Unauthorized", "send an API key")
        path = request.url.path
        handler = self.routes.get((request.method, path))
        if handler is None and request.method == "GET" and path.endswith("/status/"):
            handler = self.routes.get(("GET", "*/status/"))
        if handler is None:
            return problem(404, "Not Found", path)
        return handler(request)

    def bodies(self, path: str) -> list[Any]:
        return [
            json.loads(r.content) if r.content else None
            for r in self.requests
            if r.method == "POST" and r.url.path == path
        ]

    def sent(self, method: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method]


def accepted(queue: str) -> Handler:
    """A queuing endpoint that accepts every request with a fresh task id."""

    def handler(request: httpx.Request) -> httpx.Response:
        task_id = str(uuid.uuid4())
        return httpx.Response(
            202,
            json={
                "task_id": task_id,
                "status": "QUEUED",
                "queue": queue,
                "status_url": f"{GATEWAY}/api/background-tasks/{task_id}/status/",
            },
        )

    return handler


DEAL_PATH = "/api/background-tasks/queue-deal-processing/"
NOTIFY_PATH = "/api/background-tasks/send-notification/"
REPORT_PATH = "/api/automated-processes/generate-audit-report/"
TRIGGERS = {
    "verification_reminders": "/api/automated-processes/trigger-verification-reminders/",
    "commission_calculation": "/api/automated-processes/trigger-commission-calculation/",
    "overdue_detection": "/api/automated-processes/trigger-overdue-detection/",
}


def queueing_gateway(final: tuple[str, str | None] = ("SUCCEEDED", None)) -> Router:
    """Every queuing endpoint; status reads answer ``final`` for any task queued."""

    def status(request: httpx.Request) -> httpx.Response:
        task_id = request.url.path.split("/")[-3]
        return httpx.Response(200, json=task_state(task_id, "deal-workflow", *final))

    return Router(
        {
            ("POST", DEAL_PATH): accepted("workflow"),
            ("POST", NOTIFY_PATH): accepted("notifications"),
            ("POST", REPORT_PATH): accepted("reports"),
            **{("POST", path): accepted("business_processes") for path in TRIGGERS.values()},
            ("GET", "*/status/"): status,
        }
    )


def run(router: Router, *args: str, key: str | None = KEY) -> Any:
    return invoke(router, *args, key=key)


def cells(stdout: str, text: str) -> list[str]:
    """The cells of the first table row containing ``text``."""
    line = next(line for line in stdout.splitlines() if text in line)
    return [cell.strip() for cell in line.strip().strip("│┃").split("│")]


# --action=queue: the seed's examples


def test_the_seeds_queue_example_queues_verification_for_every_demo_deal() -> None:
    gateway = queueing_gateway()
    result = run(gateway, "--action=queue", "--task-type=deal_processing", "--priority=high")

    assert result.exit_code == 0, result.output
    bodies = [json.loads(r.content) for r in gateway.requests]
    assert {b["deal_id"] for b in bodies} == {
        f"demo-{org}-deal-{n}" for org in ("acme", "globex") for n in range(1, 5)
    }
    assert {(b["workflow_action"], b["priority"]) for b in bodies} == {("verify_deal", "high")}
    assert "queued 8 task(s)" in result.stdout
    assert_no_traceback(result)


def test_queue_for_every_deal_of_an_organization_named_by_its_name() -> None:
    gateway = queueing_gateway()
    result = run(
        gateway, "--action=queue", "--task-type=deal_processing", "--organization=Globex GmbH"
    )

    assert result.exit_code == 0, result.output
    bodies = [json.loads(r.content) for r in gateway.requests]
    assert len(bodies) == 4
    assert {b["organization_id"] for b in bodies} == {"demo-globex"}


def test_an_organization_without_known_deals_is_a_usage_error_naming_it() -> None:
    gateway = queueing_gateway()
    result = run(gateway, "--action=queue", "--task-type=deal_processing", "--organization=Nope")

    assert result.exit_code == 2
    assert "--organization" in result.stderr
    assert gateway.requests == []


def test_the_seeds_dry_run_example_lists_the_deals_and_sends_nothing() -> None:
    gateway = queueing_gateway()
    result = run(gateway, "--action=queue", "--task-type=deal_processing", "--dry-run", key=None)

    assert result.exit_code == 0, result.output
    assert gateway.requests == []
    assert "demo-acme-deal-1" in result.stdout
    assert "demo-globex-deal-4" in result.stdout
    assert "would queue 8 task(s); nothing was sent" in result.stdout


def test_file_processing_names_the_file_in_the_upload_directory() -> None:
    gateway = queueing_gateway()
    result = run(
        gateway,
        "--action=queue",
        "--task-type=file_processing",
        "--file-path=incoming/me.jpg",
        "--dry-run",
        "--json",
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["requests"][0]["body"] == {
        "file_type": "profile_picture",
        "file_path": "incoming/me.jpg",
        "original_filename": "me.jpg",
    }
    missing = run(gateway, "--action=queue", "--task-type=file_processing")
    assert missing.exit_code == 2
    assert "--file-path" in missing.stderr


def test_dry_run_json_is_the_exact_request() -> None:
    gateway = queueing_gateway()
    result = run(
        gateway,
        "--action=queue",
        "--task-type=deal_processing",
        "--deal-id=42",
        "--workflow-action=generate-invoice",
        "--priority=low",
        "--dry-run",
        "--json",
    )

    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["requests"] == [
        {
            "method": "POST",
            "url": f"{GATEWAY}{DEAL_PATH}",
            "body": {"deal_id": "42", "workflow_action": "generate_invoice", "priority": "low"},
        }
    ]
    assert plan["missing"] == []
    assert gateway.requests == []


def test_queue_deal_processing_prints_the_task_id_and_status_url() -> None:
    gateway = queueing_gateway()
    result = run(
        gateway,
        "--action=queue",
        "--task-type=deal_processing",
        "--deal-id=42",
        "--priority=high",
        "--organization=org-1",
        "--user-id=7",
    )

    assert result.exit_code == 0, result.output
    assert gateway.bodies(DEAL_PATH) == [
        {
            "deal_id": "42",
            "workflow_action": "verify_deal",
            "priority": "high",
            "user_id": "7",
            "organization_id": "org-1",
        }
    ]
    assert "queued deal_processing: verify_deal on deal 42" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "deal-workflow" in line)
    assert "QUEUED" in row
    assert "workflow" in row
    assert f"status: {GATEWAY}/api/background-tasks/" in result.stdout
    assert "/status/" in result.stdout


def test_queue_json_gives_the_task() -> None:
    gateway = queueing_gateway()
    result = run(gateway, "--action=queue", "--task-type=deal_processing", "--deal-id=42", "--json")

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    (task,) = answer["tasks"]
    uuid.UUID(task["task_id"])
    assert task["status"] == "QUEUED"
    assert task["status_url"].endswith(f"/{task['task_id']}/status/")
    assert answer["task_type"] == "deal_processing"


@pytest.mark.parametrize("action", [a.value for a in WorkflowAction])
def test_every_workflow_action_of_the_shared_schema_is_accepted(action: str) -> None:
    gateway = queueing_gateway()
    result = run(
        gateway,
        "--action=queue",
        "--task-type=deal_processing",
        "--deal-id=1",
        f"--workflow-action={action}",
    )

    assert result.exit_code == 0, result.output
    assert gateway.bodies(DEAL_PATH)[0]["workflow_action"] == action


def test_the_choices_and_task_types_are_those_of_the_shared_message_catalog() -> None:
    assert CHOICES["--workflow-action"] == tuple(a.value for a in WorkflowAction)
    assert CHOICES["--notification-type"] == tuple(n.value for n in NotificationType)
    assert CHOICES["--report-type"] == get_args(ReportType)
    assert {name: t.task_type for name, t in TASK_TYPES.items()} == {
        "deal_processing": deals.PROCESS_DEAL_WORKFLOW.type,
        "file_processing": files.PROCESS_FILE.type,
        "notification": SEND_NOTIFICATION.type,
        "verification_reminders": deals.RUN_VERIFICATION_REMINDERS.type,
        "commission_calculation": deals.RUN_COMMISSION_CALCULATION.type,
        "overdue_detection": deals.DETECT_OVERDUE_DEALS.type,
        "audit_report": deals.GENERATE_AUDIT_REPORT.type,
        "diagnostic": PING.type,
    }


def test_an_unknown_workflow_action_is_a_usage_error() -> None:
    gateway = queueing_gateway()
    result = run(
        gateway,
        "--action=queue",
        "--task-type=deal_processing",
        "--deal-id=1",
        "--workflow-action=pay",
    )

    assert result.exit_code == 2
    assert "--workflow-action" in result.stderr
    assert "verify_deal" in result.stderr
    assert gateway.requests == []


def test_wait_follows_the_task_to_success() -> None:
    gateway = queueing_gateway(("SUCCEEDED", None))
    result = run(
        gateway, "--action=queue", "--task-type=deal_processing", "--deal-id=42", "--wait", "--json"
    )

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["ok"] is True
    assert answer["tasks"][0]["status"] == "SUCCEEDED"
    assert answer["tasks"][0]["state"]["attempts"] == 1


def test_wait_exits_1_with_the_error_of_a_failed_task() -> None:
    error = "deal 42 is invoiced: verify_deal is not allowed there"
    gateway = queueing_gateway(("FAILED", error))
    result = run(gateway, "--action=queue", "--task-type=deal_processing", "--deal-id=42", "--wait")

    assert result.exit_code == 1
    assert "FAILED" in result.stdout
    assert f"ended FAILED: {error}" in " ".join(result.stderr.split())
    assert_no_traceback(result)


def test_wait_gives_up_after_the_timeout() -> None:
    gateway = queueing_gateway(("STARTED", None))
    result = run(
        gateway,
        "--action=queue",
        "--task-type=deal_processing",
        "--deal-id=42",
        "--wait",
        "--timeout=0",
    )

    assert result.exit_code == 1
    assert "still STARTED after 0s" in result.stderr


def test_notification_needs_a_type_and_a_user() -> None:
    gateway = queueing_gateway()
    no_type = run(gateway, "--action=queue", "--task-type=notification", "--user-id=7")
    no_user = run(
        gateway, "--action=queue", "--task-type=notification", "--notification-type=deal_overdue"
    )

    assert no_type.exit_code == 2
    assert "Missing option '--notification-type'" in no_type.stderr
    assert no_user.exit_code == 2
    assert "Missing option '--user-id'" in no_user.stderr
    assert gateway.requests == []


def test_notification_is_sent_to_the_user() -> None:
    gateway = queueing_gateway()
    result = run(
        gateway,
        "--action=queue",
        "--task-type=notification",
        "--notification-type=payment_received",
        "--user-id=7",
        "--deal-id=42",
    )

    assert result.exit_code == 0, result.output
    assert gateway.bodies(NOTIFY_PATH) == [
        {
            "notification_type": "payment_received",
            "recipient_type": "user",
            "user_id": "7",
            "deal_id": "42",
        }
    ]
    assert "notifier" in result.stdout


@pytest.mark.parametrize("task_type", sorted(TRIGGERS))
def test_business_processes_are_triggered_without_a_body(task_type: str) -> None:
    gateway = queueing_gateway()
    result = run(gateway, "--action=queue", f"--task-type={task_type}", "--priority=high")

    assert result.exit_code == 0, result.output
    assert gateway.bodies(TRIGGERS[task_type]) == [None]
    # The trigger endpoints always queue at medium priority.
    assert f"--priority is ignored by --task-type={task_type}" in result.stderr


def test_a_trigger_carries_the_organization() -> None:
    gateway = queueing_gateway()
    result = run(gateway, "--action=queue", "--task-type=overdue-detection", "--organization=org-1")

    assert result.exit_code == 0, result.output
    assert gateway.bodies(TRIGGERS["overdue_detection"]) == [{"organization_id": "org-1"}]


def test_audit_report_defaults_and_options() -> None:
    gateway = queueing_gateway()
    default = run(gateway, "--action=queue", "--task-type=audit_report")
    chosen = run(
        gateway, "--action=queue", "--task-type=audit_report", "--report-type=security", "--days=7"
    )

    assert default.exit_code == 0, default.output
    assert chosen.exit_code == 0, chosen.output
    assert gateway.bodies(REPORT_PATH) == [
        {"report_type": "comprehensive", "days": 30},
        {"report_type": "security", "days": 7},
    ]


def test_the_diagnostic_task_type_queues_one_ping_per_service() -> None:
    from .conftest import FakeGateway

    gateway = FakeGateway()
    result = invoke(
        gateway,
        "--action=queue",
        "--task-type=diagnostic",
        "--service=notifier",
        "--organization=Org",
    )

    assert result.exit_code == 0, result.output
    assert gateway.posted == [{"services": ["notifier"], "note": "Org"}]
    assert "notifier" in result.stdout


def test_flags_a_task_type_does_not_read_are_named() -> None:
    gateway = queueing_gateway()
    result = run(gateway, "--action=queue", "--task-type=audit_report", "--deal-id=42")

    assert result.exit_code == 0, result.output
    assert "--deal-id is ignored by --task-type=audit_report" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "--action=queue needs --task-type"),
        (("--task-type=explode",), "unknown task type 'explode'"),
    ],
)
def test_a_missing_or_unknown_task_type_lists_the_choices(
    args: tuple[str, ...], expected: str
) -> None:
    gateway = queueing_gateway()
    result = run(gateway, "--action=queue", *args)

    assert result.exit_code == 2
    message = " ".join(result.stderr.replace("│", " ").split())
    assert expected in message
    assert "deal_processing" in message
    assert gateway.requests == []


def test_a_gateway_refusal_is_shown_as_its_problem() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return problem(422, "Invalid request", "invalid field(s): deal_id")

    result = invoke(refuse, "--action=queue", "--task-type=deal_processing", "--deal-id=a b")

    assert result.exit_code == 1
    assert "Invalid request: invalid field(s): deal_id (HTTP 422)" in result.stderr


# --action=monitor

QUEUES = [
    {
        "name": "workflow",
        "ready": 3,
        "consumers": 1,
        "dead_letters_waiting": 2,
        "in_flight": 1,
        "completed_per_minute": 12.4,
    },
    {
        "name": "reports",
        "ready": None,
        "consumers": None,
        "dead_letters_waiting": None,
        "in_flight": 0,
        "completed_per_minute": 0.0,
    },
]
WORKERS = [
    {
        "service": "deal-workflow",
        "worker": "host-a:101",
        "alive": True,
        "started_at": "2026-01-01T10:00:00+00:00",
        "last_seen": "2026-01-01T10:05:00+00:00",
        "in_flight": 1,
        "processed": 57,
        "queues": ["workflow"],
    },
    {
        "service": "notifier",
        "worker": "host-b:202",
        "alive": False,
        "started_at": "2026-01-01T09:00:00+00:00",
        "last_seen": "2026-01-01T09:01:00+00:00",
        "in_flight": 0,
        "processed": 3,
        "queues": ["auth"],
    },
]


def monitoring_gateway(health: dict[str, Any], health_status: int = 200) -> Router:
    return Router(
        {
            ("GET", "/api/background-tasks/queues/"): lambda r: httpx.Response(200, json=QUEUES),
            ("GET", "/api/background-tasks/workers/"): lambda r: httpx.Response(200, json=WORKERS),
            ("GET", "/api/automated-processes/system-health/"): lambda r: httpx.Response(
                health_status, json=health
            ),
        }
    )


DEGRADED = {
    "status": "degraded",
    "reasons": ["service notifier has no recent heartbeat"],
    "checked_at": "2026-01-01T10:05:01+00:00",
    "checks": {},
}
UNHEALTHY = {
    "status": "unhealthy",
    "reasons": ["broker unreachable"],
    "checked_at": "2026-01-01T10:05:01+00:00",
    "checks": {"broker": {"status": "error", "error": "ConnectionError"}},
}


def test_monitor_shows_queues_workers_and_health() -> None:
    result = run(monitoring_gateway(DEGRADED), "--action=monitor")

    assert result.exit_code == 0, result.output
    assert cells(result.stdout, " workflow ") == ["workflow", "3", "1", "1", "2", "12.4"]
    assert cells(result.stdout, " reports ") == ["reports", "-", "-", "0", "-", "0.0"]
    dealer = cells(result.stdout, "host-a:101")
    assert dealer[:5] == ["deal-workflow", "host-a:101", "yes", "1", "57"]
    assert dealer[5].startswith("2026-01-01 10:05")
    assert cells(result.stdout, "host-b:202")[2] == "no"
    assert "system health: degraded" in result.stdout
    assert "service notifier has no recent heartbeat" in result.stdout


def test_monitor_exits_1_when_the_system_is_unhealthy() -> None:
    result = run(monitoring_gateway(UNHEALTHY, 503), "--action=monitor")

    assert result.exit_code == 1
    assert "system health: unhealthy" in result.stdout
    assert "the system is unhealthy: broker unreachable" in result.stderr
    assert_no_traceback(result)


def test_monitor_json_has_all_three() -> None:
    result = run(monitoring_gateway(UNHEALTHY, 503), "--action=monitor", "--json")

    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert answer == {"queues": QUEUES, "workers": WORKERS, "health": UNHEALTHY}


def test_monitor_reports_other_gateway_errors() -> None:
    gateway = monitoring_gateway(DEGRADED)
    gateway.routes[("GET", "/api/background-tasks/queues/")] = lambda r: problem(
        500, "Internal Server Error", "boom"
    )
    result = run(gateway, "--action=monitor")

    assert result.exit_code == 1
    assert "Internal Server Error: boom (HTTP 500)" in result.stderr


# --action=cleanup


def dead_letter_gateway(waiting: dict[str, int], replayed: int = 0, admin: bool = True) -> Router:
    store = {"waiting": dict(waiting), "replayed": replayed}

    def listing(request: httpx.Request) -> httpx.Response:
        queue = request.url.params.get("queue")
        if request.url.params.get("replayed") == "true":
            total = store["replayed"] if not queue else 0
        else:
            total = sum(n for q, n in store["waiting"].items() if not queue or q == queue)
        return httpx.Response(
            200, json={"items": [], "total": total, "by_queue": dict(store["waiting"])}
        )

    def purge(request: httpx.Request) -> httpx.Response:
        if not admin:
            return problem(403, "Forbidden", "this action needs one of: admin")
        queue = request.url.params.get("queue")
        doomed = [q for q in store["waiting"] if not queue or q == queue]
        purged = sum(store["waiting"].pop(q) for q in doomed)
        if not queue:
            purged += store["replayed"]
            store["replayed"] = 0
        return httpx.Response(200, json={"purged": purged})

    return Router({("GET", "/api/dead-letters/"): listing, ("DELETE", "/api/dead-letters/"): purge})


def sweep(job: str, kind: str, rows: int, size: int, files: int = 0, file_bytes: int = 0) -> Any:
    return {
        "job": job,
        "kind": kind,
        "description": kind,
        "retention_seconds": 30 * 86400,
        "cutoff": "2026-10-29T12:00:00Z",
        "rows": rows,
        "bytes": size,
        "files": files,
        "file_bytes": file_bytes,
        "left": 0,
    }


def retention_gateway(admin: bool = True, silent: tuple[str, ...] = ()) -> Router:
    """The housekeeping endpoints: the gateway's run, and every service's plan as a task.

    Two failed tasks and a report past retention at the gateway (until run), two uploads at the
    file-processor, inbox ids everywhere; the ``silent`` services never answer their plan task.
    """
    store = {"failed_tasks": (2, 300, 0, 0), "reports": (1, 40, 2, 5000)}
    plans = {
        "gateway": [
            sweep("failed_task_cleanup", "failed_tasks", *store["failed_tasks"]),
            sweep("system_cleanup", "reports", *store["reports"]),
        ],
        "file-processor": [sweep("system_cleanup", "uploads", 2, 0, 2, 1000)],
    }
    tasks: dict[str, dict[str, Any]] = {}

    def cleanup(request: httpx.Request) -> httpx.Response:
        if not admin:
            return problem(403, "Forbidden", "this action needs one of: admin")
        assert request.url.params.get("dry_run") == "false"
        sweeps = [sweep(s["job"], s["kind"], *store[s["kind"]]) for s in plans["gateway"]]
        for kind in store:
            store[kind] = (0, 0, 0, 0)
        return httpx.Response(
            200, json={"dry_run": False, "at": "2026-11-28T12:00:00Z", "sweeps": sweeps}
        )

    def plan(request: httpx.Request) -> httpx.Response:
        if not admin:
            return problem(403, "Forbidden", "this action needs one of: admin")
        queued = {}
        for service in SERVICES:
            task_id = str(uuid.uuid4())
            if service in silent:
                state = task_state(task_id, service, "QUEUED", None)
            else:
                state = task_state(task_id, service, "SUCCEEDED", None)
                sweeps = [sweep("system_cleanup", "inbox_ids", 3, 90), *plans.get(service, [])]
                state["result"] = {
                    "service": service,
                    "at": "2026-11-28T12:00:00Z",
                    "sweeps": sweeps,
                }
            tasks[task_id] = state
            queued[service] = {"task_id": task_id, "status": "QUEUED", "queue": "q"}
        return httpx.Response(202, json={"tasks": queued})

    def status(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=tasks[request.url.path.split("/")[-3]])

    return Router(
        {
            ("POST", "/api/housekeeping/cleanup/"): cleanup,
            ("POST", "/api/housekeeping/cleanup-plan/"): plan,
            ("GET", "*/status/"): status,
        }
    )


def test_cleanup_dry_run_shows_every_services_part_with_counts_and_bytes_and_removes_nothing() -> (
    None
):
    gateway = retention_gateway()
    result = run(gateway, "--action=cleanup", "--dry-run")

    assert result.exit_code == 0, result.output
    # The plan is asked of every service; the gateway's run endpoint is not called.
    assert [r.url.path for r in gateway.sent("POST")] == ["/api/housekeeping/cleanup-plan/"]
    assert cells(result.stdout, "failed_tasks") == [
        "gateway",
        "failed_task_cleanup",
        "failed_tasks",
        "30d",
        "2",
        "300",
        "0",
        "0",
    ]
    assert cells(result.stdout, "reports")[4:] == ["1", "40", "2", "5000"]
    assert cells(result.stdout, "uploads")[:3] == ["file-processor", "system_cleanup", "uploads"]
    assert cells(result.stdout, "uploads")[4:] == ["2", "0", "2", "1000"]
    inbox_rows = [line for line in result.stdout.splitlines() if "inbox_ids" in line]
    assert len(inbox_rows) == len(SERVICES)
    # 2 + 1 + 2 + 5 * 3 rows; 300 + 40 + 5000 + 1000 + 5 * 90 bytes.
    assert "20 row(s), 6.6 KiB would be removed" in result.stdout
    assert "nothing was removed" in result.stdout

    again = run(gateway, "--action=cleanup", "--dry-run", "--json")
    answer = json.loads(again.stdout)
    assert answer["dry_run"] is True
    assert set(answer["services"]) == set(SERVICES)
    assert {(s["service"], s["kind"]): s["rows"] for s in answer["sweeps"]}[
        ("file-processor", "uploads")
    ] == 2


def test_cleanup_dry_run_names_the_services_that_gave_no_plan_and_fails() -> None:
    gateway = retention_gateway(silent=("notifier",))
    result = run(gateway, "--action=cleanup", "--dry-run", "--timeout=0")

    assert result.exit_code == 1
    assert "1 of 5 services gave no plan: notifier (still QUEUED, no answer yet)" in result.stderr
    # What the others answered is still shown.
    assert cells(result.stdout, "uploads")[0] == "file-processor"
    assert_no_traceback(result)


def test_cleanup_runs_the_retention_cleanup_on_the_gateway() -> None:
    gateway = retention_gateway()
    result = run(gateway, "--action=cleanup", "--json")

    assert result.exit_code == 0, result.output
    (request,) = gateway.sent("POST")
    assert request.url.params["dry_run"] == "false"
    answer = json.loads(result.stdout)
    assert answer["dry_run"] is False
    assert {s["kind"]: s["rows"] for s in answer["sweeps"]} == {"failed_tasks": 2, "reports": 1}
    text = run(gateway, "--action=cleanup")
    assert "removed 0 row(s)" in text.stdout
    assert "prs schedules run system_cleanup" in text.stdout


def test_cleanup_with_a_key_that_is_not_admin_shows_the_403() -> None:
    for args in (("--dry-run",), ()):
        gateway = retention_gateway(admin=False)
        result = run(gateway, "--action=cleanup", *args)

        assert result.exit_code == 1
        assert "Forbidden: this action needs one of: admin (HTTP 403)" in result.stderr
        assert_no_traceback(result)


def test_cleanup_of_one_queue_lists_then_purges_its_dead_letters() -> None:
    gateway = dead_letter_gateway({"workflow": 2, "auth": 1})
    result = run(gateway, "--action=cleanup", "--queue=auth")

    assert result.exit_code == 0, result.output
    assert cells(result.stdout, " auth ") == ["auth", "1"]
    assert "removed 1 dead letter(s) on queue auth" in result.stdout
    (delete,) = gateway.sent("DELETE")
    assert delete.url.params["queue"] == "auth"


def test_cleanup_of_one_queue_as_json() -> None:
    gateway = dead_letter_gateway({"workflow": 2, "auth": 1})
    result = run(gateway, "--action=cleanup", "--queue=auth", "--json")

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["dead_letters"] == {"by_queue": {"auth": 1}, "waiting": 1, "replayed": 0}
    assert answer["removed"] == 1
    (delete,) = gateway.sent("DELETE")
    assert delete.url.params["queue"] == "auth"


def test_cleanup_dry_run_of_one_queue_lists_and_removes_nothing() -> None:
    gateway = dead_letter_gateway({"workflow": 2})
    result = run(gateway, "--action=cleanup", "--queue=workflow", "--dry-run")

    assert result.exit_code == 0, result.output
    assert gateway.sent("DELETE") == []
    assert "would DELETE" in result.stdout
    assert "2 dead letter(s) on queue workflow would be removed; nothing was removed" in (
        result.stdout
    )


def test_cleanup_of_an_empty_queue_deletes_nothing() -> None:
    gateway = dead_letter_gateway({})
    result = run(gateway, "--action=cleanup", "--queue=workflow")

    assert result.exit_code == 0, result.output
    assert "no dead letters on queue workflow; nothing to clean up" in result.stdout
    assert gateway.sent("DELETE") == []


# --action=status without --task-id


def task_list_gateway() -> Router:
    def listing(request: httpx.Request) -> httpx.Response:
        items = [
            task_state(str(uuid.uuid4()), "deal-workflow", "FAILED", "deal 9 is invoiced"),
            task_state(str(uuid.uuid4()), "notifier", "SUCCEEDED", None),
        ]
        return httpx.Response(200, json={"items": items, "total": 17, "limit": 20, "offset": 0})

    return Router({("GET", "/api/background-tasks/"): listing})


def test_status_without_a_task_id_lists_recent_tasks() -> None:
    gateway = task_list_gateway()
    result = run(gateway, "--action=status")

    assert result.exit_code == 0, result.output
    (request,) = gateway.requests
    assert dict(request.url.params) == {"limit": "20"}
    failed = cells(result.stdout, "FAILED")
    assert failed[1:4] == ["diagnostic.ping", "FAILED", "system"]
    assert failed[-1] == "deal 9 is invoiced"
    assert "2 of 17 task(s)" in result.stdout


def test_the_task_list_filters() -> None:
    gateway = task_list_gateway()
    result = run(
        gateway,
        "--action=status",
        "--status=failed",
        "--task-type=deal_processing",
        "--organization=org-1",
        "--limit=5",
        "--json",
    )

    assert result.exit_code == 0, result.output
    (request,) = gateway.requests
    assert dict(request.url.params) == {
        "limit": "5",
        "status": "FAILED",
        "task_type": "deal.process_workflow",
        "organization_id": "org-1",
    }
    assert json.loads(result.stdout)["total"] == 17


def test_an_unknown_status_filter_is_a_usage_error() -> None:
    gateway = task_list_gateway()
    result = run(gateway, "--action=status", "--status=lost")

    assert result.exit_code == 2
    assert "--status" in result.stderr
    assert gateway.requests == []


def test_monitor_watch_refreshes_until_its_iterations_are_done() -> None:
    gateway = monitoring_gateway(DEGRADED)
    result = run(gateway, "--action=monitor", "--watch", "--interval=0.1", "--iterations=3")

    assert result.exit_code == 0, result.output
    health_calls = [r for r in gateway.requests if r.url.path.endswith("/system-health/")]
    assert len(health_calls) == 3
    assert "Ctrl-C to stop" in result.stdout
    assert "system health: degraded" in result.stdout


def test_monitor_watch_json_is_one_line_per_refresh() -> None:
    result = run(
        monitoring_gateway(DEGRADED),
        "--action=monitor",
        "--watch",
        "--json",
        "--interval=0.1",
        "--iterations=2",
    )

    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert all(json.loads(line)["health"] == DEGRADED for line in lines)


def test_monitor_watch_keeps_going_when_the_gateway_stops_answering() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    result = invoke(down, "--action=monitor", "--watch", "--interval=0.1", "--iterations=2")

    assert result.exit_code == 0
    assert "gateway not reachable" in result.stdout
    assert_no_traceback(result)


def test_monitor_fits_an_80_column_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = run(monitoring_gateway(DEGRADED), "--action=monitor")

    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout
    assert "host-a:101" in result.stdout
    assert "workflow" in result.stdout


def test_a_queued_task_shows_its_whole_id_on_an_80_column_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    gateway = queueing_gateway()
    result = run(gateway, "--action=queue", "--task-type=deal_processing", "--deal-id=42", "--wait")

    assert result.exit_code == 0, result.output
    # The second request reads the status of the task the first one queued.
    task_id = gateway.requests[1].url.path.split("/")[-3]
    assert task_id in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout
