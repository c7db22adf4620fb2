"""Log lines: JSON for machines, one coloured line for a person at a terminal."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from prs_shared import logging as prs_logging
from prs_shared.logging import HumanFormatter, bind_context, configure_logging, wants_json
from prs_shared.settings import ServiceSettings


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    bind_context(correlation_id=None, task_id=None, message_type=None)


def logged(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO, json_: bool | None) -> str:
    monkeypatch.setattr(prs_logging.sys, "stderr", stream)
    configure_logging("gateway", "INFO", json=json_)
    bind_context(task_id="t-1")
    logging.getLogger("gateway.relay").warning("relayed %d", 3)
    return stream.getvalue()


def test_logs_to_a_pipe_are_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    record = json.loads(logged(monkeypatch, io.StringIO(), None))
    assert (record["level"], record["message"], record["service"]) == (
        "WARNING",
        "relayed 3",
        "gateway",
    )
    assert record["task_id"] == "t-1"


def test_logs_to_a_terminal_are_coloured_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    text = logged(monkeypatch, Terminal(), None)
    assert "\033[33mWARNING" in text
    assert "gateway gateway.relay: relayed 3" in text
    assert "task_id=t-1" in text


def test_prs_log_json_forces_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    assert json.loads(logged(monkeypatch, Terminal(), True))["message"] == "relayed 3"
    monkeypatch.setenv("NO_COLOR", "1")
    plain = logged(monkeypatch, io.StringIO(), False)
    assert plain.rstrip().endswith("gateway gateway.relay: relayed 3  task_id=t-1")
    assert "\033[" not in plain


def test_force_color_colours_a_pipe_that_ends_at_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\033[" in logged(monkeypatch, io.StringIO(), False)


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), (None, None)])
def test_prs_log_json_is_read_as_three_ways(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bool | None
) -> None:
    if value is None:
        monkeypatch.delenv("PRS_LOG_JSON", raising=False)
    else:
        monkeypatch.setenv("PRS_LOG_JSON", value)
    assert ServiceSettings().log_json is expected
    assert wants_json(Terminal(), expected) is (expected is not False and expected is not None)


def test_a_line_outside_any_task_has_no_empty_context() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    record.service = "notifier"
    assert HumanFormatter(colour=False).format(record).endswith("INFO    notifier x: hello")
