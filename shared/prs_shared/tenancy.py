"""The caller's organization, enforced where the data lives (DESIGN.md §3 rule 8).

The gateway writes the organization of the caller's API key into every command's envelope
(``Envelope.organization_id``); ``None`` there means a key without organization (an admin), which
may act for any organization. The service that owns an object — a deal, a user's picture, a
recipient — compares the object's organization with the caller's, and treats an object of
another organization exactly like one it has never heard of: the same exception with the same
message, hence the same retries and the same final task status, and no side effect. A caller
therefore never learns whether an id exists in someone else's organization.

Services filter by organization in the query that finds the object (not after loading it), so
the "other organization" and the "unknown" cases run the same code path.
"""

from __future__ import annotations

from prs_shared.messaging.errors import PermanentError


def may_act_on(caller: str | None, owner: str | None) -> bool:
    """Whether a caller of organization ``caller`` may touch an object owned by ``owner``."""
    return caller is None or caller == owner


def organization_scope(caller: str | None, requested: str | None, *, service: str) -> str | None:
    """The organization a command that may cover several (a report, a process run) covers.

    A caller without organization gets what it asked for (``None``: every organization). A
    scoped caller gets its own organization when it names none or its own, and is refused —
    permanently, in the words used for an unknown organization — when it names another.
    """
    if caller is None:
        return requested
    if requested is None or requested == caller:
        return caller
    # One message for every organization but the caller's, whether it exists or not.
    raise PermanentError(f"organization {requested} is not known to {service}")
