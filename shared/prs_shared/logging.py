"""Structured JSON logs that carry the current ``correlation_id`` and ``task_id``."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("task_id", default=None)
message_type_var: ContextVar[str | None] = ContextVar("message_type", default=None)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        record.correlation_id = correlation_id_var.get()
        record.task_id = task_id_var.get()
        record.message_type = message_type_var.get()
        return True


def configure_logging(service: str, level: str = "INFO", *, json: bool = True) -> None:
    """Route the root logger to stderr, as JSON lines unless ``json`` is false."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(service))
    fmt: logging.Formatter
    if json:
        fmt = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s "
            "%(correlation_id)s %(task_id)s %(message_type)s",
            rename_fields={"levelname": "level", "asctime": "time"},
        )
    else:
        fmt = logging.Formatter(
            "%(asctime)s %(levelname)s [%(service)s] %(name)s: %(message)s "
            "(correlation_id=%(correlation_id)s task_id=%(task_id)s)"
        )
    handler.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiormq logs every reconnect attempt at ERROR with a traceback; one line is enough.
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)


def bind_context(**values: Any) -> None:
    """Set the log context for the current task (asyncio copies contextvars per task)."""
    if "correlation_id" in values:
        correlation_id_var.set(_str(values["correlation_id"]))
    if "task_id" in values:
        task_id_var.set(_str(values["task_id"]))
    if "message_type" in values:
        message_type_var.set(_str(values["message_type"]))


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
