"""Unit tests of the client's retry and error handling, over httpx's in-memory transport.

The running gateway is exercised by test_against_the_services.py; here the answers the gateway
gives rarely (503, a 429 that does not go away, a non-problem error body) are scripted.
"""

from __future__ import annotations

import httpx
import pytest

from prs_client import Client, RateLimited, RetryPolicy, ServiceUnavailable

QUEUED = {
    "task_id": "6f1c1c2e-8a9e-4d5b-9f6e-0c8a3f1d2b7a",
    "status": "QUEUED",
    "queue": "workflow",
    "status_url": "http://gateway/api/background-tasks/6f1c1c2e-8a9e-4d5b-9f6e-0c8a3f1d2b7a/status/",
}
FAST = RetryPolicy(attempts=3, initial_wait=0.0, max_wait=0.0)


def client_answering(*answers: httpx.Response, seen: list[httpx.Request]) -> Client:
    replies = iter(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(replies)

    http = httpx.Client(base_url="http://gateway", transport=httpx.MockTransport(handle))
    return Client("http://gateway", retry=FAST, http=http)


def problem(status: int, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    body = {"type": "about:blank", "title": "Not queued", "status": status}
    return httpx.Response(status, json=body, headers=headers)


def test_a_503_is_retried_with_the_same_idempotency_key_until_accepted() -> None:
    seen: list[httpx.Request] = []
    client = client_answering(problem(503, "0"), httpx.Response(202, json=QUEUED), seen=seen)
    task = client.queue_deal_processing(deal_id="d-1", workflow_action="verify_deal")
    assert str(task.task_id) == QUEUED["task_id"]
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert len(seen) == 2
    assert len(keys) == 1


def test_a_429_that_outlasts_the_retries_is_raised_with_its_retry_after() -> None:
    seen: list[httpx.Request] = []
    client = client_answering(*(problem(429, "0") for _ in range(3)), seen=seen)
    with pytest.raises(RateLimited) as limited:
        client.send_notification("deal_overdue", user_id="u-1")
    assert limited.value.retry_after == 0.0
    assert len(seen) == FAST.attempts


def test_an_error_without_a_problem_body_is_still_a_typed_error() -> None:
    seen: list[httpx.Request] = []
    answers = [httpx.Response(503, text="upstream down") for _ in range(3)]
    client = client_answering(*answers, seen=seen)
    with pytest.raises(ServiceUnavailable, match="upstream down"):
        client.list_tasks()


def test_each_queuing_call_gets_its_own_idempotency_key_unless_given() -> None:
    seen: list[httpx.Request] = []
    client = client_answering(*(httpx.Response(202, json=QUEUED) for _ in range(3)), seen=seen)
    client.trigger_process("overdue_detection")
    client.trigger_process("overdue_detection")
    client.trigger_process("overdue_detection", idempotency_key="nightly-2026-12-05")
    keys = [r.headers["Idempotency-Key"] for r in seen]
    assert len(set(keys)) == 3
    assert keys[2] == "nightly-2026-12-05"
