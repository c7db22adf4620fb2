"""Dependencies shared by the routes: the gateway's state, a database session, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api import failed_auth
from gateway.api.problems import Problem
from gateway.auth import Principal, Role, authenticate
from gateway.ratelimit import RateLimiter
from gateway.state import GatewayState
from prs_shared.tenancy import may_act_on

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")


async def get_state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


StateDep = Annotated[GatewayState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.host.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def _not_looked_up(session: AsyncSession, presented: str) -> Principal | None:
    """Stands in for ``authenticate`` while an address is locked out: only cached keys pass."""
    return None


def _too_many_failures(wait: float) -> Problem:
    return Problem(
        429,
        "Too many requests",
        "too many failed authentications from this address",
        headers={"Retry-After": RateLimiter.retry_after_header(wait)},
    )


async def get_principal(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    unauthorized = Problem(
        401,
        "Unauthorized",
        "send an API key as 'Authorization: Bearer <key>'",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized  # no key presented: nothing was guessed
    # A key verified moments ago passes at once: no lockout check, which is a database round
    # trip per request when the failed-auth buckets are shared (a locked-out address, too, gets
    # through only with a key it already proved).
    if (principal := state.keys.cached(credentials.credentials)) is not None:
        return principal
    failures = state.auth_failures
    address = failed_auth.client_key(request)
    locked = await failures.wait(address)
    check = authenticate if locked == 0 else _not_looked_up
    principal = await state.keys.lookup(credentials.credentials, check)
    if principal is not None:
        return principal
    if locked:
        raise _too_many_failures(locked)
    wait = await failed_auth.record_failure(failures, address)
    if wait:
        raise _too_many_failures(wait)
    raise unauthorized


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(*roles: Role) -> Any:
    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles and not principal.is_admin:
            raise Problem(403, "Forbidden", f"this action needs one of: {', '.join(roles)}")
        return principal

    return Depends(check)


async def rate_limited(principal: CurrentPrincipal, state: StateDep) -> Principal:
    """Spend one of the key's queuing tokens, or answer 429 with Retry-After."""
    wait = await state.limiter.take(principal.key_id)
    if wait > 0:
        raise Problem(
            429,
            "Too many requests",
            f"queuing limit of {state.settings.rate_limit_per_minute:g}/minute reached",
            headers={"Retry-After": RateLimiter.retry_after_header(wait)},
        )
    return principal


QueuingPrincipal = Annotated[Principal, Depends(rate_limited)]


def effective_organization(principal: Principal, requested: str | None) -> str | None:
    """A scoped key always acts for its own organization; others may name one."""
    if principal.organization_id is not None:
        if requested is not None and requested != principal.organization_id:
            raise Problem(403, "Forbidden", "this API key may only act for its own organization")
        return principal.organization_id
    return requested


def visible(principal: Principal, organization_id: str | None) -> bool:
    """Whether a resource of ``organization_id`` exists for this key (else it reads as 404)."""
    return may_act_on(principal.organization_id, organization_id)
