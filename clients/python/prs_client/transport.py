"""Sending a :class:`~prs_client.calls.Call`: retries on 429 and 503, errors as exceptions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from prs_client.calls import Call
from prs_client.errors import ProblemError, problem_from

T = TypeVar("T")
log = logging.getLogger("prs_client")

RETRIED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry an answer of 429 or 503 (or a failed connection).

    ``Retry-After`` is honoured when the gateway sends it (up to ``max_wait``); otherwise the
    wait is random up to a bound that doubles from ``initial_wait`` (full jitter).
    """

    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 30.0

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ProblemError) and error.retry_after is not None:
            return min(error.retry_after, self.max_wait)
        backoff = wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait)
        return float(backoff(state))

    def _kwargs(self) -> dict[str, object]:
        return {
            "stop": stop_after_attempt(self.attempts),
            "wait": self._wait,
            "retry": retry_if_exception(_retryable),
            "before_sleep": _log_retry,
            "reraise": True,
        }

    def sync(self) -> Retrying:
        return Retrying(**self._kwargs())  # type: ignore[arg-type]

    def asynchronous(self) -> AsyncRetrying:
        return AsyncRetrying(**self._kwargs())  # type: ignore[arg-type]


def _retryable(error: BaseException) -> bool:
    # A refused connection never reached the gateway, so repeating the request is safe.
    if isinstance(error, httpx.ConnectError):
        return True
    return isinstance(error, ProblemError) and error.status in RETRIED_STATUSES


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("retrying after %s (attempt %d, in %.2fs)", error, state.attempt_number, wait)


def request(http: httpx.Client | httpx.AsyncClient, call: Call[T]) -> httpx.Request:
    """The httpx request of a call, on either kind of httpx client."""
    return http.build_request(
        call.method,
        call.path,
        json=call.json,
        params=call.params,
        files=call.files,
        data=call.data,
        headers=call.headers,
    )


def decode(call: Call[T], response: httpx.Response) -> T:
    """The call's answer, or the typed exception of an error response."""
    if response.is_success or response.status_code in call.also_ok:
        return call.decode(response)
    raise problem_from(response)


def send(http: httpx.Client, call: Call[T], policy: RetryPolicy) -> T:
    for attempt in policy.sync():
        with attempt:
            return decode(call, http.send(request(http, call)))
    raise AssertionError("unreachable: tenacity re-raises the last error")


async def send_async(http: httpx.AsyncClient, call: Call[T], policy: RetryPolicy) -> T:
    async for attempt in policy.asynchronous():
        with attempt:
            return decode(call, await http.send(request(http, call)))
    raise AssertionError("unreachable: tenacity re-raises the last error")
