"""Logging in and out of the console."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.api import failed_auth
from gateway.api.deps import StateDep
from gateway.auth import authenticate, hash_key
from gateway.console.session import COOKIE, COOKIE_PATH
from gateway.console.web import Acting, page, signer

router = APIRouter()


@router.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    return page(request, "login.html", None)


@router.post("/login", response_model=None)
async def login(
    request: Request, state: StateDep, api_key: Annotated[str, Form(max_length=500)] = ""
) -> Response:
    """Open a session for a valid key; a failure counts against the failed-auth limiter."""
    address = failed_auth.client_key(request)
    failures = state.auth_failures
    if await failures.wait(address):
        return page(request, "login.html", None, 429, error="Too many failed logins; wait.")
    principal = None
    if api_key:
        async with state.host.sessions() as session:
            principal = await authenticate(session, api_key)
    if principal is None:
        await failed_auth.record_failure(failures, address)
        return page(request, "login.html", None, 401, error="That API key is not valid.")
    sessions = signer(request)
    response = RedirectResponse("/console/tasks", status_code=303)
    response.set_cookie(
        COOKIE,
        sessions.issue(principal.key_id, hash_key(api_key)),
        max_age=sessions.max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(console: Acting) -> RedirectResponse:
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response
