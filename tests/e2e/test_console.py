"""The operator console in a real headless browser (Debian's chromium, driven by Playwright)
against the five running services.

Set ``PRS_CONSOLE_SCREENSHOTS=docs/console`` to refresh the README's screenshots while the tests
run.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from prs_shared.messaging.topology import Topology

from .conftest import REPO, Stack

CHROMIUM = Path("/usr/bin/chromium")
LIVE_TIMEOUT_MS = 60_000


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        await launched.close()


class Console:
    """One browser page of the console, recording the host of every request it makes."""

    def __init__(self, page: Page, stack: Stack) -> None:
        self.stack = stack
        self.page = page
        self.page.set_default_timeout(LIVE_TIMEOUT_MS)
        self.hosts: set[str] = set()
        self.page.on("request", lambda request: self.hosts.add(urlsplit(request.url).netloc))

    async def log_in(self, key: str) -> None:
        await self.page.goto(f"{self.stack.gateway_url}/console/login")
        await self.page.fill("input[name=api_key]", key)
        await self.page.keyboard.press("Enter")
        await expect(self.page).to_have_url(re.compile(r"/console/tasks$"))

    def row(self, task_id: str, status: str | None = None) -> Any:
        selector = f'tr[data-task-id="{task_id}"]'
        if status:
            selector += f'[data-status="{status}"]'
        return self.page.locator(selector)

    async def screenshot(self, name: str) -> None:
        target = os.environ.get("PRS_CONSOLE_SCREENSHOTS")
        if target:
            folder = REPO / target
            folder.mkdir(parents=True, exist_ok=True)
            await self.page.screenshot(path=str(folder / f"{name}.png"))


@pytest.fixture
async def console(browser: Browser, stack: Stack) -> AsyncIterator[Console]:
    stack.wait_ready()
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    yield Console(await context.new_page(), stack)
    await context.close()


def make_key(stack: Stack, role: str, organization_id: str | None = None) -> str:
    with stack.http() as http:
        response = http.post(
            "/api/keys/",
            json={
                "name": f"{role} {organization_id}",
                "role": role,
                "organization_id": organization_id,
            },
        )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def queue_diagnostic(stack: Stack, key: str | None = None, service: str = "deal-workflow") -> str:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with stack.http() as http:
        response = http.post(
            "/api/background-tasks/queue-diagnostic/",
            json={"services": [service]},
            headers=headers,
        )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["tasks"][service]["task_id"]
    return task_id


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_task_queued_through_the_api_appears_and_succeeds_without_a_reload(
    console: Console, stack: Stack
) -> None:
    await console.log_in(stack.api_key)
    await console.page.evaluate("window.notReloaded = true")

    task_id = queue_diagnostic(stack)

    await expect(console.row(task_id)).to_have_count(1)
    await expect(console.row(task_id, "SUCCEEDED")).to_have_count(1)
    assert await console.page.evaluate("window.notReloaded") is True, "the page was reloaded"
    await console.screenshot("tasks")

    await console.row(task_id).locator("a").click()
    await expect(console.page).to_have_url(re.compile(rf"/console/tasks/{task_id}$"))
    timeline = console.page.locator("ol.timeline li")
    await expect(timeline.first).to_have_attribute("data-step", "queued")
    await expect(timeline.last).to_have_attribute("data-step", "succeeded")
    await console.screenshot("task")

    gateway = urlsplit(stack.gateway_url).netloc
    assert console.hosts == {gateway}, f"requests went beyond the gateway: {console.hosts}"


def queue_deal(stack: Stack, deal_id: str) -> str:
    with stack.http() as http:
        response = http.post(
            "/api/background-tasks/queue-deal-processing/",
            json={"deal_id": deal_id, "workflow_action": "verify_deal"},
        )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def wait_for(stack: Stack, task_id: str, statuses: set[str]) -> dict[str, Any]:
    with stack.http() as http:
        for _ in range(240):
            body: dict[str, Any] = http.get(f"/api/background-tasks/{task_id}/status/").json()
            if body["status"] in statuses:
                return body
            await asyncio.sleep(0.25)
    pytest.fail(f"task {task_id} never reached {statuses}: {body}\n{stack.logs()}")


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_tasks_page_shows_each_retry_and_its_retry_button_queues_it_again(
    console: Console, stack: Stack
) -> None:
    # A deal PRS has not announced is worth a retry; after the last one it is dead-lettered.
    task_id = queue_deal(stack, "D-never-announced")
    ended = await wait_for(stack, task_id, {"DEAD_LETTERED", "FAILED"})
    assert ended["status"] == "DEAD_LETTERED", ended
    await console.log_in(stack.api_key)

    await console.page.goto(f"{stack.gateway_url}/console/tasks/{task_id}")

    steps = console.page.locator("ol.timeline li")
    await expect(steps.first).to_have_attribute("data-step", "queued")
    await expect(steps.first).to_contain_text("on workflow")
    await expect(steps.last).to_have_attribute("data-step", "dead_lettered")
    await expect(steps.last).to_contain_text(f"attempt {ended['attempts']}")
    retries = console.page.locator('ol.timeline li[data-step="retrying"]')
    await expect(retries).to_have_count(ended["attempts"] - 1)
    assert ended["attempts"] > 1, "the unknown deal was retried"
    await expect(retries.first).to_contain_text("attempt 1 failed, will retry")
    await expect(retries.first).to_contain_text("next attempt 20")
    await expect(retries.first.locator("pre.error")).to_contain_text("D-never-announced")
    await expect(console.page.locator("[data-payload]")).to_contain_text("D-never-announced")
    await console.screenshot("task-retries")

    await console.page.get_by_role("button", name="Retry").click()

    await expect(console.page).to_have_url(re.compile(rf"/console/tasks/{task_id}$"))
    requeued = console.page.locator('ol.timeline li[data-step="queued"]')
    await expect(requeued).to_have_count(2)
    await expect(requeued.last).to_contain_text("queued again (retried)")


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_filter_narrows_the_list_and_the_search_finds_one_task(
    console: Console, stack: Stack
) -> None:
    on_workflow = queue_diagnostic(stack, service="deal-workflow")
    on_auth = queue_diagnostic(stack, service="notifier")
    await console.log_in(stack.api_key)
    await expect(console.row(on_workflow, "SUCCEEDED")).to_have_count(1)
    await expect(console.row(on_auth, "SUCCEEDED")).to_have_count(1)

    await console.page.fill("input[name=queue]", "auth")
    await console.page.select_option("select[name=status]", "SUCCEEDED")
    await console.page.get_by_role("button", name="Filter").click()

    await expect(console.page).to_have_url(re.compile(r"[?&]queue=auth(&|$)"))
    await expect(console.row(on_auth)).to_have_count(1)
    await expect(console.row(on_workflow)).to_have_count(0)
    await expect(console.page.locator("input[name=queue]")).to_have_value("auth")
    await console.screenshot("tasks-filtered")

    await console.page.goto(f"{stack.gateway_url}/console/tasks?task_id={on_workflow}")
    await expect(console.row(on_workflow)).to_have_count(1)
    await expect(console.page.locator("tr[data-task-id]")).to_have_count(1)


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_scoped_key_sees_its_organization_only(console: Console, stack: Stack) -> None:
    ours = queue_diagnostic(stack, make_key(stack, "operator", "org-a"))
    theirs = queue_diagnostic(stack, make_key(stack, "operator", "org-b"))

    await console.log_in(make_key(stack, "viewer", "org-a"))

    await expect(console.row(ours)).to_have_count(1)
    await expect(console.row(theirs)).to_have_count(0)
    await console.page.goto(f"{stack.gateway_url}/console/tasks/{theirs}")
    await expect(console.page.locator("h1")).to_have_text("Task not found")
    with httpx.Client(base_url=stack.gateway_url) as http:
        feed = http.get("/console/tasks/feed")
    assert feed.status_code == 401, "the live feed needs a session too"


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_viewer_sees_no_button_that_changes_anything(
    console: Console, stack: Stack
) -> None:
    task_id = queue_diagnostic(stack)
    await console.log_in(make_key(stack, "viewer"))
    await expect(console.row(task_id, "SUCCEEDED")).to_have_count(1)

    for path in ("/console/tasks", f"/console/tasks/{task_id}"):
        await console.page.goto(stack.gateway_url + path)
        actions = console.page.locator("main form[method=post]")
        await expect(actions).to_have_count(0)


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_logging_out_ends_the_session(console: Console, stack: Stack) -> None:
    await console.log_in(stack.api_key)
    await console.screenshot("login-done")

    await console.page.get_by_role("button", name="Log out").click()

    await expect(console.page).to_have_url(re.compile(r"/console/login$"))
    await console.page.goto(f"{stack.gateway_url}/console/tasks")
    await expect(console.page).to_have_url(re.compile(r"/console/login$"))
    await console.screenshot("login")


async def publish_malformed(amqp_url: str, queue: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.default_exchange.publish(
            aio_pika.Message(b"\xff not json", message_id=str(uuid.uuid4())),
            routing_key=queue,
            mandatory=True,
        )
    finally:
        await connection.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_dead_letter_is_replayed_from_its_page(
    console: Console, stack: Stack, amqp_url: str, namespace: str
) -> None:
    queue = Topology(namespace=namespace).queue("workflow")
    await console.log_in(stack.api_key)
    await publish_malformed(amqp_url, queue)

    row = console.page.locator("tr[data-dead-letter-id]")
    for _ in range(60):
        await console.page.goto(f"{stack.gateway_url}/console/dead-letters")
        if await row.count():
            break
        await console.page.wait_for_timeout(500)
    await expect(row).to_have_count(1)
    await console.screenshot("dead-letters")

    await row.locator("a").click()
    await expect(console.page.locator("[data-replayed]")).to_have_attribute("data-replayed", "no")
    await console.screenshot("dead-letter")
    await console.page.get_by_role("button", name="Replay").click()

    await expect(console.page.locator("[data-replayed]")).to_have_attribute("data-replayed", "yes")
    with stack.http() as http:
        replayed = http.get("/api/dead-letters/", params={"replayed": "true"}).json()
    assert replayed["total"] == 1, replayed


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_process_is_run_now_from_the_processes_page(console: Console, stack: Stack) -> None:
    await console.log_in(stack.api_key)
    await console.page.goto(f"{stack.gateway_url}/console/processes")
    process = console.page.locator('tr[data-process="commission_calculation"]')
    await expect(process).to_have_attribute("data-status", "never_run")

    await process.get_by_role("button", name="Run commission_calculation now").click()

    queued = await console.page.locator("[data-queued-task]").get_attribute("data-queued-task")
    assert queued
    for _ in range(60):
        await console.page.goto(f"{stack.gateway_url}/console/processes")
        if await process.get_attribute("data-status") == "SUCCEEDED":
            break
        await console.page.wait_for_timeout(500)
    await expect(process).to_have_attribute("data-status", "SUCCEEDED")
    await console.screenshot("processes")


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_every_page_loads_from_the_gateway_alone_at_desktop_and_phone_sizes(
    console: Console, stack: Stack
) -> None:
    queue_diagnostic(stack)
    await console.log_in(stack.api_key)
    gateway = urlsplit(stack.gateway_url).netloc
    pages = ("overview", "tasks", "dead-letters", "processes", "notifications")
    for size, (width, height) in {"": (1280, 800), "-phone": (390, 844)}.items():
        await console.page.set_viewport_size({"width": width, "height": height})
        for name in pages:
            response = await console.page.goto(f"{stack.gateway_url}/console/{name}")
            assert response is not None
            assert response.status == 200, name
            await expect(console.page.locator("h1")).to_be_visible()
            overflow = await console.page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} scrolls sideways at {width}px"
            if name in ("overview", "notifications") or size:
                await console.screenshot(f"{name}{size}")
    assert console.hosts == {gateway}, f"requests went beyond the gateway: {console.hosts}"
