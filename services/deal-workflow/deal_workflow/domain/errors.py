"""Domain errors. Each is permanent: the same message would fail the same way on every retry."""

from __future__ import annotations

from prs_shared.messaging.errors import PermanentError


class DomainError(PermanentError):
    """A business rule refused the request."""


class ForbiddenTransition(DomainError):
    """The deal's current state does not allow the requested action."""

    def __init__(self, state: str, action: str, allowed: list[str]) -> None:
        self.state = state
        self.action = action
        allowed_text = ", ".join(allowed) if allowed else "none"
        super().__init__(
            f"action {action!r} is not allowed for a deal in state {state!r} "
            f"(allowed there: {allowed_text})"
        )


class InvalidPolicy(DomainError):
    """An organization's commission policy cannot be applied."""
