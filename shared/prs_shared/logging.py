"""Logs that carry the current ``correlation_id`` and ``task_id``: JSON lines for machines,
coloured one-liners for a person watching a terminal."""

from __future__ import annotations

import logging
import os
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


_LEVEL_COLOURS = {
    logging.DEBUG: "\033[2m",
    logging.INFO: "\033[32m",
    logging.WARNING: "\033[33m",
    logging.ERROR: "\033[31m",
    logging.CRITICAL: "\033[1;31m",
}
_RESET = "\033[0m"
_DIM = "\033[2m"


class HumanFormatter(logging.Formatter):
    """``12:00:01 INFO  gateway  gateway.relay: message  task_id=…``, coloured when asked.

    Context fields appear only when set, so a line outside any task stays short.
    """

    def __init__(self, *, colour: bool) -> None:
        super().__init__(datefmt="%H:%M:%S")
        self._colour = colour

    def format(self, record: logging.LogRecord) -> str:
        level = f"{record.levelname:<7}"
        context = " ".join(
            f"{name}={value}"
            for name in ("task_id", "correlation_id", "message_type")
            if (value := getattr(record, name, None))
        )
        when = self.formatTime(record, self.datefmt)
        service = getattr(record, "service", "-")
        if self._colour:
            level = f"{_LEVEL_COLOURS.get(record.levelno, '')}{level}{_RESET}"
            when = f"{_DIM}{when}{_RESET}"
            context = f"{_DIM}{context}{_RESET}" if context else ""
        line = f"{when} {level} {service} {record.name}: {record.getMessage()}"
        if context:
            line += f"  {context}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def wants_json(stream: Any, json: bool | None) -> bool:
    """JSON when asked (``PRS_LOG_JSON``), else JSON unless ``stream`` is a terminal."""
    if json is not None:
        return json
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


def wants_colour(stream: Any, env: Any = None) -> bool:
    """Colour on a terminal or with ``FORCE_COLOR`` (``make run`` pipes through honcho), never
    with ``NO_COLOR`` (https://no-color.org)."""
    env = os.environ if env is None else env
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(callable(isatty) and isatty())


def configure_logging(service: str, level: str = "INFO", *, json: bool | None = None) -> None:
    """Route the root logger to stderr: JSON lines, or (``json`` false, or ``None`` and stderr a
    terminal) one coloured line per record for a person.

    It is stderr that is tested, not stdout, because that is where the lines go: a terminal on
    stdout with logs redirected to a file still wants JSON in the file.
    """
    stream = sys.stderr
    handler = logging.StreamHandler(stream)
    handler.addFilter(_ContextFilter(service))
    fmt: logging.Formatter
    if wants_json(stream, json):
        fmt = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s "
            "%(correlation_id)s %(task_id)s %(message_type)s",
            rename_fields={"levelname": "level", "asctime": "time"},
        )
    else:
        fmt = HumanFormatter(colour=wants_colour(stream))
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
