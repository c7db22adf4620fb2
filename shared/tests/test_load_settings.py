"""A bad setting ends a service's start with a line naming the variable, not a traceback."""

from __future__ import annotations

import pytest

from prs_shared.settings import load_settings
from prs_shared.testing.worker import ProbeSettings


def test_a_bad_value_names_its_variable_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRS_PREFETCH", "0")
    with pytest.raises(SystemExit) as exited:
        load_settings(ProbeSettings)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "probe: invalid configuration: PRS_PREFETCH: Input should be greater" in err
    assert "Traceback" not in err


def test_good_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRS_PREFETCH", "7")
    assert load_settings(ProbeSettings).prefetch == 7


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("bad", "'bad'"),
        ("http://u:secret@rabbitmq/", "'http://u:***@rabbitmq/'"),
        ("amqp://guest:guest@localhost:5672/,amqp://", "'amqp:'"),
    ],
    ids=["not-a-url", "wrong-scheme-password-hidden", "second-node-without-host"],
)
def test_a_broker_url_that_cannot_be_connected_to_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str, shown: str
) -> None:
    monkeypatch.setenv("AMQP_URL", value)
    with pytest.raises(SystemExit) as exited:
        load_settings(ProbeSettings)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"AMQP_URL: {shown} is not an amqp:// or amqps:// URL with a host" in err
    assert "secret" not in err
