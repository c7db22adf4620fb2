"""What every action receives: the parsed flags, the output and a way to reach the gateway."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from prs_cli.client import ClientFactory, GatewayClient
from prs_cli.config import Config
from prs_cli.output import Output


class Service(enum.StrEnum):
    """The five services, in the order the gateway lists them; each answers the diagnostic."""

    GATEWAY = "gateway"
    DEAL_WORKFLOW = "deal-workflow"
    FILE_PROCESSOR = "file-processor"
    NOTIFIER = "notifier"
    SCHEDULER = "scheduler"


SERVICES: tuple[str, ...] = tuple(s.value for s in Service)


class Action(enum.StrEnum):
    """Values of ``--action`` (the seed's management command had the same five)."""

    QUEUE = "queue"
    MONITOR = "monitor"
    STATUS = "status"
    TEST = "test"
    CLEANUP = "cleanup"


class Priority(enum.StrEnum):
    """Values of ``--priority``."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class ManageOptions:
    """The flags of ``prs manage-background-tasks``."""

    action: Action
    task_type: str | None = None
    priority: Priority | None = None
    task_id: str | None = None
    organization: str | None = None
    dry_run: bool = False
    services: tuple[str, ...] = ()
    timeout: float = 30.0
    poll_interval: float = 0.25
    wait: bool = False
    # What --action=queue puts in the task; None when not given (each task type has defaults).
    deal_id: str | None = None
    workflow_action: str | None = None
    notification_type: str | None = None
    user_id: str | None = None
    report_type: str | None = None
    days: int | None = None
    file_path: str | None = None
    file_type: str | None = None
    # Filters: --queue for cleanup, --status and --limit for the task list of --action=status.
    queue: str | None = None
    status: str | None = None
    limit: int = 20
    # --action=monitor --watch: redraw every `interval` seconds, `iterations` times (None: until
    # Ctrl-C; tests give a number).
    watch: bool = False
    interval: float = 2.0
    iterations: int | None = None


@dataclass
class ActionContext:
    """One invocation: options, output, and a gateway client made on first use."""

    config: Config
    options: ManageOptions
    output: Output
    client_factory: ClientFactory
    _client: GatewayClient | None = field(default=None, init=False, repr=False)

    def client(self) -> GatewayClient:
        """The gateway client (created lazily so that a dry run never builds one)."""
        if self._client is None:
            self._client = self.client_factory(self.config)
        return self._client

    def close(self) -> None:
        """Close the client if one was made."""
        if self._client is not None:
            self._client.close()
            self._client = None
