"""The operator console: server-rendered pages under ``/console/`` over the API's own functions.

``mount`` adds it to the gateway's app: its routes, its static files, the session signer, the
live-list broadcaster and a Content-Security-Policy that lets its pages load from the gateway only.
"""

from __future__ import annotations

import secrets

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.console import dead_letters, login, overview, processes, tasks
from gateway.console.session import SessionSigner
from gateway.console.web import HERE, CsrfRefused, LoginRequired, NotAllowed, page
from gateway.settings import GatewaySettings
from gateway.task_feed import TaskFeed

PREFIX = "/console"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
)


def mount(app: FastAPI, settings: GatewaySettings, feed: TaskFeed) -> None:
    """Serve the console from ``app``; its live lists wake on ``feed``'s changes."""
    secret = settings.console_secret
    app.state.console_signer = SessionSigner(
        secret.get_secret_value() if secret else secrets.token_urlsafe(32),
        settings.console_session_seconds,
    )
    app.state.console_feed = feed
    for module in (login, overview, tasks, dead_letters, processes):
        app.include_router(module.router, prefix=PREFIX, include_in_schema=False)
    app.add_api_route(PREFIX, _home, include_in_schema=False)
    app.add_api_route(PREFIX + "/", _home, include_in_schema=False)
    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_exception_handler(NotAllowed, _not_allowed)
    app.add_middleware(SecurityHeaders)


async def _home() -> RedirectResponse:
    return RedirectResponse(PREFIX + "/overview", status_code=303)


async def _to_login(request: Request, exc: Exception) -> Response:
    if request.url.path.endswith("/feed"):
        return Response("log in first", status_code=401, media_type="text/plain")
    return RedirectResponse(PREFIX + "/login", status_code=303)


async def _csrf_refused(request: Request, exc: Exception) -> HTMLResponse:
    return page(
        request,
        "problem.html",
        None,
        403,
        title="Form refused",
        detail="The form's CSRF token is missing or stale: reload the page and try again.",
    )


async def _not_allowed(request: Request, exc: Exception) -> HTMLResponse:
    return page(
        request, "problem.html", None, 403, title="Forbidden", detail="This key may only read."
    )


class SecurityHeaders:
    """The console's security headers on its responses (plain ASGI: streams stay streams)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        static = path.startswith(PREFIX + "/static")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                if not static and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)
