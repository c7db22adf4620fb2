"""Python client of PRS Tasks, the background-task platform of the Payment Receiving System.

``Client`` / ``AsyncClient`` speak the gateway's HTTP API; ``prs_client.events`` (the ``events``
extra) publishes PRS domain events, and ``prs_client.outbox`` (the ``outbox`` extra) stages them
in a SQLAlchemy application's own transaction.
"""

from prs_client.client import AsyncClient, Client
from prs_client.errors import (
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ProblemError,
    PRSError,
    RateLimited,
    ServiceUnavailable,
    TaskFailed,
    TaskTimeout,
    Unauthorized,
    ValidationFailed,
)
from prs_client.models import (
    Download,
    NotificationType,
    Priority,
    QueuedResponse,
    TaskStatus,
    TaskStatusResponse,
    UserRole,
    WorkflowAction,
)
from prs_client.transport import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "Download",
    "FieldError",
    "Forbidden",
    "NotFound",
    "NotificationType",
    "PRSError",
    "Priority",
    "ProblemError",
    "QueuedResponse",
    "RateLimited",
    "RetryPolicy",
    "ServiceUnavailable",
    "TaskFailed",
    "TaskStatus",
    "TaskStatusResponse",
    "TaskTimeout",
    "Unauthorized",
    "UserRole",
    "ValidationFailed",
    "WorkflowAction",
    "__version__",
]
