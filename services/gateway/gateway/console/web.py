"""What every console page needs: templates, the logged-in session, CSRF checks."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from gateway.api.deps import StateDep
from gateway.api.problems import Problem
from gateway.console.session import COOKIE, ConsoleSession, SessionSigner

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


class LoginRequired(Exception):
    """No valid session: the browser is sent to the login form."""


class CsrfRefused(Exception):
    """A state-changing form without the session's CSRF token."""


def signer(request: Request) -> SessionSigner:
    found: SessionSigner = request.app.state.console_signer
    return found


async def current_session(request: Request, state: StateDep) -> ConsoleSession:
    # Its own short session: the page's reads open theirs, and SQLite allows one writer at a time.
    async with state.host.sessions() as session:
        opened = await signer(request).read(request.cookies.get(COOKIE), session)
    if opened is None:
        raise LoginRequired
    return opened


Console = Annotated[ConsoleSession, Depends(current_session)]


async def checked_session(console: Console, csrf: Annotated[str, Form()] = "") -> ConsoleSession:
    """The session of a state-changing form, whose ``csrf`` field must match the session's."""
    if not hmac.compare_digest(csrf.encode(), console.csrf.encode()):
        raise CsrfRefused
    return console


Acting = Annotated[ConsoleSession, Depends(checked_session)]


class NotAllowed(Exception):
    """The session's role may not change anything."""


async def operating_session(console: Acting) -> ConsoleSession:
    """A checked session whose role may act (operator or admin), as the API's routes require."""
    if not console.may_change:
        raise NotAllowed
    return console


Operating = Annotated[ConsoleSession, Depends(operating_session)]


def page(
    request: Request,
    template: str,
    console: ConsoleSession | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {"console": console, **context},
        status_code=status_code,
    )


def problem_page(request: Request, console: ConsoleSession, problem: Problem) -> HTMLResponse:
    """An API refusal (404, 409, 403...) shown as a page with the same status."""
    return page(
        request, "problem.html", console, problem.status, title=problem.title, detail=problem.detail
    )


async def act(
    request: Request, console: ConsoleSession, action: Awaitable[object], then: str
) -> Response:
    """Run an API action; on success go to ``then``, on a refusal show it as a page."""
    try:
        await action
    except Problem as refused:
        return problem_page(request, console, refused)
    return RedirectResponse(then, status_code=303)
