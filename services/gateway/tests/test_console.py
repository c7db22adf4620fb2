"""The console's routes over the ASGI app: login cookie, CSRF, roles, security headers."""

from __future__ import annotations

import re

import pytest

from gateway.console.session import COOKIE

from .conftest import Gateway

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
