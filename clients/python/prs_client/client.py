"""``Client`` and ``AsyncClient``: the gateway API for a PRS service, sync or asyncio.

Both expose every builder of :mod:`prs_client.calls` as a method with the same name and
signature; the sync client returns the answer, the async one a coroutine of it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

import httpx

from prs_client import calls
from prs_client.calls import Call, TaskRef
from prs_client.errors import TaskFailed, TaskTimeout
from prs_client.models import TaskStatus, TaskStatusResponse
from prs_client.transport import RetryPolicy, send, send_async

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
POLL_INTERVAL = 0.25
MAX_POLL_INTERVAL = 2.0
MAX_HOLD = 20.0
"""Longest a status request asks the gateway to hold its answer (the gateway allows 30 s)."""


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": "prs-client"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def settled(task: TaskStatusResponse) -> bool:
    """True when the task succeeded; raises :class:`TaskFailed` when it ended otherwise."""
    if task.status == TaskStatus.SUCCEEDED:
        return True
    if task.status.terminal:
        raise TaskFailed(task)
    return False


class _Poll:
    """How ``wait`` asks: each status request held by the gateway until the task finishes
    (``?wait=``, never past the deadline nor the HTTP read timeout); growing pauses between
    requests only when the gateway answered sooner than asked (one that does not hold)."""

    def __init__(self, timeout: float, interval: float, read_timeout: float | None) -> None:
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._interval = interval
        self._longest = MAX_HOLD if read_timeout is None else max(0.0, read_timeout - 1.0)
        self._held = 0.0
        self._asked = 0.0

    def hold(self) -> float:
        """Seconds the next status request asks to be held."""
        remaining = self._deadline - time.monotonic()
        self._held = max(0.0, min(remaining, MAX_HOLD, self._longest))
        self._asked = time.monotonic()
        return self._held

    def pause(self, task: TaskStatusResponse) -> float:
        """Seconds to sleep before asking again; :class:`TaskTimeout` once the time is up."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TaskTimeout(task, self._timeout)
        if self._held and time.monotonic() - self._asked >= self._held / 2:
            return 0.0  # held as asked: ask again at once
        pause = min(self._interval, remaining)
        self._interval = min(self._interval * 1.5, MAX_POLL_INTERVAL)
        return pause


def _read_timeout(http: httpx.Client | httpx.AsyncClient) -> float | None:
    return http.timeout.read


def _sync(build: Callable[P, Call[T]]) -> Callable[Concatenate[Client, P], T]:
    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.send(build(*args, **kwargs))

    method.__name__ = build.__name__
    method.__doc__ = build.__doc__
    return method


def _async(
    build: Callable[P, Call[T]],
) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]:
    async def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.send(build(*args, **kwargs))

    method.__name__ = build.__name__
    method.__doc__ = build.__doc__
    return method


class Client:
    """The gateway API, synchronous. Use as a context manager, or call :meth:`close`.

    ``timeout`` bounds each HTTP request; ``retry`` says how 429 and 503 answers are retried.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.retry_policy = retry or RetryPolicy()
        self._http = http or httpx.Client(
            base_url=base_url, headers=_headers(api_key), timeout=timeout
        )

    def send(self, call: Call[T]) -> T:
        """Send one call (with retries) and return its decoded answer."""
        return send(self._http, call, self.retry_policy)

    def wait(
        self, task_id: TaskRef, timeout: float = 60.0, *, poll_interval: float = POLL_INTERVAL
    ) -> TaskStatusResponse:
        """Wait until the task succeeds and return it; :class:`TaskFailed` if it ends otherwise,
        :class:`TaskTimeout` if it is still running after ``timeout`` seconds. The gateway
        holds each status request until the task finishes, so the answer comes when it does."""
        poll = _Poll(timeout, poll_interval, _read_timeout(self._http))
        while not settled(task := self.get_status(task_id, wait=poll.hold())):
            time.sleep(poll.pause(task))
        return task

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    queue_deal_processing = _sync(calls.queue_deal_processing)
    queue_file_processing = _sync(calls.queue_file_processing)
    queue_file_processing_from_path = _sync(calls.queue_file_processing_from_path)
    send_notification = _sync(calls.send_notification)
    generate_audit_report = _sync(calls.generate_audit_report)
    trigger_process = _sync(calls.trigger_process)
    register_webhook = _sync(calls.register_webhook)
    list_webhooks = _sync(calls.list_webhooks)
    queue_diagnostic = _sync(calls.queue_diagnostic)
    get_status = _sync(calls.get_status)
    list_tasks = _sync(calls.list_tasks)
    cancel = _sync(calls.cancel)
    retry = _sync(calls.retry)
    download = _sync(calls.download)
    list_reports = _sync(calls.list_reports)
    download_report = _sync(calls.download_report)
    process_status = _sync(calls.process_status)
    system_health = _sync(calls.system_health)
    list_schedules = _sync(calls.list_schedules)
    get_schedule = _sync(calls.get_schedule)
    change_schedule = _sync(calls.change_schedule)
    enable_schedule = _sync(calls.enable_schedule)
    disable_schedule = _sync(calls.disable_schedule)
    run_schedule = _sync(calls.run_schedule)
    cleanup = _sync(calls.cleanup)
    cleanup_plan = _sync(calls.cleanup_plan)


class AsyncClient:
    """The gateway API for asyncio: the same methods as :class:`Client`, awaited."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.retry_policy = retry or RetryPolicy()
        self._http = http or httpx.AsyncClient(
            base_url=base_url, headers=_headers(api_key), timeout=timeout
        )

    async def send(self, call: Call[T]) -> T:
        """Send one call (with retries) and return its decoded answer."""
        return await send_async(self._http, call, self.retry_policy)

    async def wait(
        self, task_id: TaskRef, timeout: float = 60.0, *, poll_interval: float = POLL_INTERVAL
    ) -> TaskStatusResponse:
        """As :meth:`Client.wait`, without blocking the event loop."""
        poll = _Poll(timeout, poll_interval, _read_timeout(self._http))
        # Polling a remote state: there is no local event to wait on.
        while not settled(task := await self.get_status(task_id, wait=poll.hold())):  # noqa: ASYNC110
            await asyncio.sleep(poll.pause(task))
        return task

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    queue_deal_processing = _async(calls.queue_deal_processing)
    queue_file_processing = _async(calls.queue_file_processing)
    queue_file_processing_from_path = _async(calls.queue_file_processing_from_path)
    send_notification = _async(calls.send_notification)
    generate_audit_report = _async(calls.generate_audit_report)
    trigger_process = _async(calls.trigger_process)
    register_webhook = _async(calls.register_webhook)
    list_webhooks = _async(calls.list_webhooks)
    queue_diagnostic = _async(calls.queue_diagnostic)
    get_status = _async(calls.get_status)
    list_tasks = _async(calls.list_tasks)
    cancel = _async(calls.cancel)
    retry = _async(calls.retry)
    download = _async(calls.download)
    list_reports = _async(calls.list_reports)
    download_report = _async(calls.download_report)
    process_status = _async(calls.process_status)
    system_health = _async(calls.system_health)
    list_schedules = _async(calls.list_schedules)
    get_schedule = _async(calls.get_schedule)
    change_schedule = _async(calls.change_schedule)
    enable_schedule = _async(calls.enable_schedule)
    disable_schedule = _async(calls.disable_schedule)
    run_schedule = _async(calls.run_schedule)
    cleanup = _async(calls.cleanup)
    cleanup_plan = _async(calls.cleanup_plan)
