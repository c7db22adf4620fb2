"""Starting a service when something it needs is missing: a clear line, never a traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def start_worker(tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "prs_shared.testing.worker"],
        env={
            **os.environ,
            "PRS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/probe.sqlite3",
            "PRS_LOG_JSON": "false",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_service_started_without_a_broker_waits_for_it_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    # Nothing listens on this port: the service must keep trying instead of exiting.
    proc = start_worker(tmp_path, AMQP_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    try:
        time.sleep(4)
        assert proc.poll() is None, proc.communicate()[0]
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "RabbitMQ is not answering at 127.0.0.1:" in output
    assert "Traceback" not in output


def test_a_taken_metrics_port_names_the_port_and_the_variable(
    tmp_path: Path, amqp_url: str, namespace: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start_worker(
            tmp_path, AMQP_URL=amqp_url, PRS_NAMESPACE=namespace, PRS_METRICS_PORT=str(port)
        )
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, output
    assert f"cannot serve metrics on 127.0.0.1:{port}" in output
    assert "set PRS_METRICS_PORT to a free port, or 0" in output
    assert "Traceback" not in output
