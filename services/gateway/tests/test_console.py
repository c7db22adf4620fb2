"""The console's routes over the ASGI app: login cookie, CSRF, roles, security headers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from gateway.console.session import COOKIE
from prs_shared.messaging.envelope import utcnow
from prs_shared.messaging.messages import TaskStatus as S

from .conftest import Gateway
from .test_task_events import fold, queue_deal, told

pytestmark = pytest.mark.asyncio


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


async def log_in(gateway: Gateway, key: str | None = None) -> str:
    response = await gateway.client.post(
        "/console/login", data={"api_key": key or gateway.admin_key}
    )
    assert response.status_code == 303, response.text
    page = await gateway.client.get("/console/tasks")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


async def test_a_valid_key_opens_an_httponly_strict_expiring_session_without_the_key(
    gateway: Gateway,
) -> None:
    response = await gateway.client.post("/console/login", data={"api_key": gateway.admin_key})

    assert response.status_code == 303
    assert response.headers["location"] == "/console/tasks"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "max-age", "path"} <= flags
    assert "samesite=strict" in cookie.lower()
    assert "path=/console" in cookie.lower()
    assert gateway.admin_key not in cookie


async def test_a_wrong_key_is_refused_and_opens_no_session(gateway: Gateway) -> None:
    response = await gateway.client.post("/console/login", data={"api_key": "not-a-key"})

    assert response.status_code == 401
    assert "not valid" in response.text
    assert "set-cookie" not in response.headers
    assert (await gateway.client.get("/console/tasks")).status_code == 303


@pytest.mark.parametrize("gateway_overrides", [{"auth_failure_burst": 2}])
async def test_failed_logins_count_against_the_failed_authentication_limit(
    gateway: Gateway,
) -> None:
    codes = [
        (await gateway.client.post("/console/login", data={"api_key": "guess"})).status_code
        for _ in range(3)
    ]
    assert codes == [401, 401, 429]
    api = await gateway.client.get("/api/background-tasks/", headers=gateway.auth("guess"))
    assert api.status_code == 429, "the API and the console share one limit"


async def test_pages_without_a_session_send_the_browser_to_the_login_form(
    gateway: Gateway,
) -> None:
    response = await gateway.client.get("/console/tasks")

    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"


async def test_a_forged_cookie_opens_no_session(gateway: Gateway) -> None:
    gateway.client.cookies.set(COOKIE, "eyJrIjoiYWRtaW4ifQ.forged.signature", path="/console")

    assert (await gateway.client.get("/console/tasks")).status_code == 303


async def test_a_state_changing_form_without_the_csrf_token_is_refused(gateway: Gateway) -> None:
    await log_in(gateway)

    refused = await gateway.client.post("/console/logout", data={"csrf": "wrong"})

    assert refused.status_code == 403
    assert "CSRF" in refused.text
    assert (await gateway.client.get("/console/tasks")).status_code == 200, "still logged in"


async def test_logout_with_the_token_clears_the_session(gateway: Gateway) -> None:
    csrf = await log_in(gateway)

    response = await gateway.client.post("/console/logout", data={"csrf": csrf})

    assert response.status_code == 303
    assert f'{COOKIE}=""' in response.headers["set-cookie"]
    assert (await gateway.client.get("/console/tasks")).status_code == 303


async def test_console_pages_allow_only_their_own_origin(gateway: Gateway) -> None:
    for path in ("/console/login", "/console/static/console.js"):
        response = await gateway.client.get(path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "script-src 'self'" in policy
        assert "http" not in policy, f"{path}: no other origin is allowed"


async def test_a_viewer_may_not_retry_even_with_a_valid_token(gateway: Gateway) -> None:
    viewer = await gateway.make_key("viewer")
    csrf = await log_in(gateway, viewer)

    response = await gateway.client.post(
        "/console/tasks/00000000-0000-4000-8000-000000000000/retry", data={"csrf": csrf}
    )

    assert response.status_code == 403


async def test_an_unknown_filter_value_is_named_not_a_server_error(gateway: Gateway) -> None:
    await log_in(gateway)

    response = await gateway.client.get("/console/tasks", params={"status": "BOGUS"})

    assert response.status_code == 400
    assert "status: unknown state" in response.text


async def test_the_overview_shows_every_dependency_and_the_hours_charts(gateway: Gateway) -> None:
    await log_in(gateway)

    response = await gateway.client.get("/console/overview")

    assert response.status_code == 200, response.text
    for check in ("database", "broker", "disk", "smtp"):
        assert f'data-check="{check}"' in response.text
    assert response.text.count("<svg") == 2
    assert "data-dead-letters=" in response.text


async def test_the_overview_colours_each_health_word_by_what_it_means(gateway: Gateway) -> None:
    await log_in(gateway)

    page = (await gateway.client.get("/console/overview")).text

    # The database answers here: "ok" is good. No service sends heartbeats in this test: "down".
    assert re.search(r'data-check="database".*?class="status s-succeeded">ok<', page, re.S)
    assert re.search(r'data-service="notifier".*?class="status s-failed">down<', page, re.S)
    overall = re.search(r'class="status (s-\w+)" data-health="(\w+)"', page)
    assert overall is not None
    expected = {"healthy": "s-succeeded", "degraded": "s-retrying", "unhealthy": "s-failed"}
    assert overall.group(1) == expected[overall.group(2)]


async def test_a_viewer_reads_no_dead_letters_and_runs_no_process(gateway: Gateway) -> None:
    csrf = await log_in(gateway, await gateway.make_key("viewer"))

    assert (await gateway.client.get("/console/dead-letters")).status_code == 403
    run = await gateway.client.post(
        "/console/processes/commission_calculation/run", data={"csrf": csrf}
    )
    assert run.status_code == 403
    processes = await gateway.client.get("/console/processes")
    assert processes.status_code == 200
    assert "Run now" not in processes.text


async def test_an_operator_may_not_purge_dead_letters(gateway: Gateway) -> None:
    csrf = await log_in(gateway, await gateway.make_key("operator"))

    response = await gateway.client.post(
        "/console/dead-letters/purge", data={"csrf": csrf, "confirm": "purge"}
    )

    assert response.status_code == 403


async def test_a_purge_without_its_typed_confirmation_deletes_nothing(gateway: Gateway) -> None:
    csrf = await log_in(gateway)

    response = await gateway.client.post("/console/dead-letters/purge", data={"csrf": csrf})

    assert response.status_code == 422
    assert "type purge" in response.text


async def test_run_now_queues_the_process_and_names_its_task(gateway: Gateway) -> None:
    csrf = await log_in(gateway)

    response = await gateway.client.post(
        "/console/processes/commission_calculation/run", data={"csrf": csrf}
    )

    assert response.status_code == 303
    task_id = response.headers["location"].split("queued=")[1]
    status = await gateway.client.get(
        f"/api/background-tasks/{task_id}/status/", headers=gateway.auth()
    )
    assert status.status_code == 200
    assert status.json()["task_type"] == "process.commission_calculation.run"


async def test_the_notification_log_page_lists_the_log(gateway: Gateway) -> None:
    await log_in(gateway)

    response = await gateway.client.get("/console/notifications")

    assert response.status_code == 200
    assert "0 in the log" in response.text


async def test_a_tasks_page_shows_its_recorded_history_payload_and_the_retry_button(
    gateway: Gateway,
) -> None:
    csrf = await log_in(gateway, await gateway.make_key("operator"))
    task_id = await queue_deal(gateway)
    retry_at = utcnow() + timedelta(seconds=30)
    # Microseconds apart: the retry below comes after the failure, as it would.
    await fold(
        gateway,
        [
            told(task_id, S.STARTED, 1, 1e-6),
            told(task_id, S.RETRYING, 1, 2e-6, error="TimeoutError: smtp", retry_at=retry_at),
            told(task_id, S.STARTED, 2, 3e-6),
            told(task_id, S.FAILED, 2, 4e-6, error="ValueError: no deal D-7"),
        ],
    )

    response = await gateway.client.get(f"/console/tasks/{task_id}")

    assert response.status_code == 200, response.text
    steps = re.findall(r'data-step="([a-z_]+)"', response.text)
    assert steps == ["queued", "started", "retrying", "started", "failed"]
    assert "TimeoutError: smtp" in response.text
    assert f"next attempt {retry_at:%Y-%m-%d %H:%M:%S}" in response.text
    assert "ValueError: no deal D-7" in response.text
    assert '"deal_id": "D-7"' in response.text, "the payload is shown"
    assert 'action="/console/tasks/' + task_id + '/retry"' in response.text
    assert "/cancel" not in response.text, "a failed task cannot be cancelled"

    retried = await gateway.client.post(f"/console/tasks/{task_id}/retry", data={"csrf": csrf})

    assert retried.status_code == 303
    again = await gateway.client.get(f"/console/tasks/{task_id}")
    assert re.findall(r'data-step="([a-z_]+)"', again.text)[-1] == "queued"
    assert "queued again (retried)" in again.text
    assert 'action="/console/tasks/' + task_id + '/cancel"' in again.text


async def test_a_viewer_sees_a_tasks_history_without_any_button(gateway: Gateway) -> None:
    await log_in(gateway, await gateway.make_key("viewer"))
    task_id = await queue_deal(gateway)

    response = await gateway.client.get(f"/console/tasks/{task_id}")

    assert response.status_code == 200
    assert 'data-step="queued"' in response.text
    assert "/cancel" not in response.text
    assert "/retry" not in response.text


async def test_another_organizations_task_page_is_not_found(gateway: Gateway) -> None:
    task_id = await queue_deal(gateway, await gateway.make_key("operator", "org-a"))
    await log_in(gateway, await gateway.make_key("operator", "org-b"))

    response = await gateway.client.get(f"/console/tasks/{task_id}")

    assert response.status_code == 404
    assert "D-7" not in response.text


async def test_the_list_narrows_by_type_queue_time_range_and_id(gateway: Gateway) -> None:
    await log_in(gateway)
    deal = await queue_deal(gateway)
    ping = await gateway.client.post(
        "/api/background-tasks/queue-diagnostic/",
        json={"services": ["deal-workflow"]},
        headers=gateway.auth(),
    )
    ping_id = ping.json()["tasks"]["deal-workflow"]["task_id"]

    async def listed(**params: str) -> set[str]:
        response = await gateway.client.get("/console/tasks", params=params)
        assert response.status_code == 200, response.text
        return set(re.findall(r'data-task-id="([0-9a-f-]+)"', response.text))

    assert {deal, ping_id} <= await listed()
    assert await listed(task_type="deal.process_workflow") == {deal}
    assert await listed(queue="workflow", task_type="diagnostic.ping") == {ping_id}
    assert await listed(task_id=ping_id) == {ping_id}
    hour_ago = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert {deal, ping_id} <= await listed(since=hour_ago)
    assert await listed(until=hour_ago) == set()
    assert await listed(since="2999-01-01T00:00") == set()


async def test_a_malformed_time_is_named_and_only_admins_filter_by_organization(
    gateway: Gateway,
) -> None:
    await log_in(gateway)
    bad_time = await gateway.client.get("/console/tasks", params={"since": "yesterday"})
    assert bad_time.status_code == 400
    assert "since: not a date and time" in bad_time.text
    admin = await gateway.client.get("/console/tasks")
    assert 'name="organization_id"' in admin.text

    await log_in(gateway, await gateway.make_key("operator"))
    operator = await gateway.client.get("/console/tasks")
    assert 'name="organization_id"' not in operator.text
    refused = await gateway.client.get("/console/tasks", params={"organization_id": "org-a"})
    assert refused.status_code == 400
    assert "organization_id: only an admin" in refused.text


async def test_an_admin_disables_a_schedule_from_the_processes_page(gateway: Gateway) -> None:
    csrf = await log_in(gateway)
    page = await gateway.client.get("/console/processes")
    assert 'aria-label="Disable system_cleanup"' in page.text

    response = await gateway.client.post(
        "/console/processes/system_cleanup/disable", data={"csrf": csrf}
    )

    assert response.status_code == 303
    task_id = response.headers["location"].split("queued=")[1]
    status = await gateway.client.get(
        f"/api/background-tasks/{task_id}/status/", headers=gateway.auth()
    )
    assert status.json()["task_type"] == "schedule.update"


async def test_only_an_admin_switches_schedules_and_only_with_the_csrf_token(
    gateway: Gateway,
) -> None:
    csrf = await log_in(gateway, await gateway.make_key("operator"))
    page = await gateway.client.get("/console/processes")
    assert "Run now" in page.text
    assert "Disable system_cleanup" not in page.text
    refused = await gateway.client.post(
        "/console/processes/system_cleanup/disable", data={"csrf": csrf}
    )
    assert refused.status_code == 403

    await log_in(gateway)
    forged = await gateway.client.post("/console/processes/system_cleanup/disable", data={})
    assert forged.status_code == 403
