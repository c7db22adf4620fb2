"""Request count and latency of the gateway's HTTP API, by route template and status.

A plain ASGI middleware (streams stay streams). The route label is the template the router
matched (``/api/background-tasks/{task_id}/status/``), never the raw path: one series per
endpoint, not one per task id. A request no route matches is labelled ``unmatched``.

Latency is measured to the start of the response (status and headers sent): the console's live
feed streams for as long as a page is open and would otherwise read as an hour-long request.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"

HTTP_REQUESTS = Counter(
    "prs_http_requests_total",
    "HTTP requests answered by the gateway, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "prs_http_request_duration_seconds",
    "Time from request to response start, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


Document = Callable[[], dict[str, Any]]


class RouteTemplates:
    """The template of a request's route: the one the router matched, or, for a request a
    middleware answered before routing (a 413 from the body limit), the OpenAPI document's path
    that matches it. The document, not the router, because FastAPI's included routers do not
    expose their routes to a plain ``matches`` call."""

    def __init__(self, document: Document) -> None:
        self._document = document
        self._paths: list[tuple[re.Pattern[str], str]] | None = None

    def __call__(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            template = getattr(route, "path_format", None) or getattr(route, "path", None)
            return str(template) if template else UNMATCHED
        if self._paths is None:
            self._paths = [(compile_path(p)[0], p) for p in self._document().get("paths", {})]
        path = scope.get("path", "")
        return next((p for regex, p in self._paths if regex.match(path)), UNMATCHED)


class HttpMetricsMiddleware:
    """Counts and times every HTTP request; the outermost middleware, so refusals count too."""

    def __init__(self, app: ASGIApp, *, document: Document) -> None:
        self.app = app
        self.template = RouteTemplates(document)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before any response is answered 500 by starlette
        elapsed: float | None = None

        async def timed(message: Message) -> None:
            nonlocal status, elapsed
            if message["type"] == "http.response.start":
                status = int(message["status"])
                elapsed = time.perf_counter() - started
            await send(message)

        try:
            await self.app(scope, receive, timed)
        finally:
            labels = (scope["method"], self.template(scope), str(status))
            HTTP_REQUESTS.labels(*labels).inc()
            duration = elapsed if elapsed is not None else time.perf_counter() - started
            HTTP_DURATION.labels(*labels).observe(duration)
