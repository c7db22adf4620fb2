"""Dead letters: the list with reason and attempts, one message's detail, replay one or a
selection, purge (admins, after a confirmation) — through the API's own route functions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.api.deps import SessionDep, StateDep
from gateway.api.problems import Problem
from gateway.api.routes.dead_letters import (
    inspect_dead_letter,
    list_dead_letters,
    purge_dead_letters,
    replay_dead_letter,
)
from gateway.console.web import Console, NotAllowed, Operating, act, page, problem_page

router = APIRouter()


def _operators_only(console: Console) -> None:
    # The API lets operators and admins read dead letters (bodies may hold personal data).
    if not console.may_change:
        raise NotAllowed


@router.get("/dead-letters")
async def dead_letters(
    request: Request,
    session: SessionDep,
    console: Console,
    replayed: bool = False,
    replayed_count: int | None = None,
) -> HTMLResponse:
    _operators_only(console)
    letters = await list_dead_letters(session, console.principal, None, None, replayed, 100, 0)
    return page(
        request,
        "dead_letters.html",
        console,
        letters=letters,
        replayed=replayed,
        replayed_count=replayed_count,
    )


@router.get("/dead-letters/{dead_letter_id}", response_model=None)
async def dead_letter(
    dead_letter_id: str, request: Request, session: SessionDep, console: Console
) -> HTMLResponse:
    _operators_only(console)
    try:
        letter = await inspect_dead_letter(dead_letter_id, session, console.principal)
    except Problem as missing:
        return problem_page(request, console, missing)
    return page(request, "dead_letter.html", console, letter=letter)


@router.post("/dead-letters/replay", response_model=None)
async def replay_selected(
    request: Request,
    state: StateDep,
    console: Operating,
    selected: Annotated[list[str] | None, Form(max_length=500)] = None,
) -> Response:
    """Replay each selected dead letter in its own transaction; stop at the first refusal."""
    chosen = selected or []
    if not chosen:
        refused = Problem(422, "Nothing selected", "select at least one dead letter to replay")
        return problem_page(request, console, refused)
    for dead_letter_id in chosen:
        async with state.host.sessions() as session:
            try:
                await replay_dead_letter(dead_letter_id, session, console.principal, state)
            except Problem as refused:
                return problem_page(request, console, refused)
    return RedirectResponse(f"/console/dead-letters?replayed_count={len(chosen)}", 303)


@router.post("/dead-letters/{dead_letter_id}/replay", response_model=None)
async def replay_one(
    dead_letter_id: str,
    request: Request,
    session: SessionDep,
    state: StateDep,
    console: Operating,
) -> Response:
    replayed = replay_dead_letter(dead_letter_id, session, console.principal, state)
    return await act(request, console, replayed, f"/console/dead-letters/{dead_letter_id}")


@router.post("/dead-letters/purge", response_model=None)
async def purge(
    request: Request,
    session: SessionDep,
    console: Operating,
    confirm: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Delete every dead letter for good; admins only, and only with ``confirm=purge``."""
    if not console.principal.is_admin:
        raise NotAllowed
    if confirm != "purge":
        refused = Problem(422, "Not confirmed", "type purge in the confirmation field to purge")
        return problem_page(request, console, refused)
    await purge_dead_letters(session, console.principal, None)
    return RedirectResponse("/console/dead-letters", 303)
