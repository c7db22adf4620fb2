"""`make run`'s broker check (deploy/ensure-broker): one line and a non-zero exit, not tracebacks."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "ensure-broker"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again when the socket is


def check(amqp_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT)],
        env={**os.environ, "AMQP_URL": amqp_url, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_broker_that_answers_is_enough(amqp_url: str) -> None:
    result = check(amqp_url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_no_broker_and_none_installed_is_one_line_saying_how_to_get_one() -> None:
    port = closed_port()
    result = check(
        f"amqp://guest:guest@127.0.0.1:{port}/", PRS_RABBITMQ_SERVER="no-such-rabbitmq-server"
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0]
    assert "apt-get install rabbitmq-server" in lines[0]
    assert "docker run -d -p 127.0.0.1:5672:5672 rabbitmq:3.13" in lines[0]


def test_a_remote_broker_is_never_started_here(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    fake = tmp_path / "fake-rabbitmq-server"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\n")
    fake.chmod(0o755)
    result = check("amqp://guest:guest@broker.invalid:5672/", PRS_RABBITMQ_SERVER=str(fake))
    assert result.returncode == 1
    assert "broker.invalid:5672" in result.stderr
    assert not marker.exists()


def test_an_installed_local_broker_is_started_and_waited_for(tmp_path: Path) -> None:
    # A stand-in server that is started but never answers: the script must call it, wait the
    # time it is given, and then fail with one line.
    marker = tmp_path / "started"
    fake = tmp_path / "fake-rabbitmq-server"
    fake.write_text(f'#!/bin/sh\necho "$@" > {marker}\n')
    fake.chmod(0o755)
    port = closed_port()
    result = check(
        f"amqp://guest:guest@localhost:{port}/",
        PRS_RABBITMQ_SERVER=str(fake),
        PRS_BROKER_WAIT="1",
    )
    assert result.returncode == 1
    assert marker.read_text().strip() == "-detached"
    assert "starting the local RabbitMQ" in result.stdout
    assert len(result.stderr.splitlines()) == 1, result.stderr
