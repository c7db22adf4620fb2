"""Errors the ``prs`` command expects and reports as one line, never as a traceback."""

from __future__ import annotations

from typing import Any

# Exit codes: 1 means the command ran and the outcome was bad (a task failed, no such task, the
# gateway refused); 2 means the command itself was wrong or cannot run in this version.
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(Exception):
    """An expected failure: its message is shown to the user and the command exits ``exit_code``."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(CliError):
    """The flags do not make sense together; ``param`` names the offending flag."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class MissingOption(UsageError):
    """A flag this combination of flags cannot do without."""


class GatewayError(CliError):
    """Talking to the gateway went wrong."""


class GatewayUnreachable(GatewayError):
    """Nothing answers at the gateway URL."""

    def __init__(self, url: str, reason: str | None = None) -> None:
        message = f"gateway not reachable at {url}: start it with `make run`"
        if reason:
            message += f" ({reason})"
        super().__init__(message)
        self.url = url


class ProblemError(GatewayError):
    """The gateway answered with an error (an RFC 9457 problem, or something shaped like one)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        text = f"{title}: {detail}" if detail and detail != title else title
        super().__init__(f"{text} (HTTP {status})")
        self.status = status
        self.title = title
        self.detail = detail
        self.body = body or {}
