"""The five services as `make run` starts them, for the end-to-end tests.

Real processes, a real RabbitMQ (isolated by the test's namespace) and embedded SQLite databases
under the test's temporary directory; `prs` runs as a subprocess against them.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
SERVICES = ("gateway", "deal-workflow", "file-processor", "notifier", "scheduler")
WORKER_METRICS_PORTS = (
    "PRS_DEAL_WORKFLOW_METRICS_PORT",
    "PRS_FILE_PROCESSOR_METRICS_PORT",
    "PRS_NOTIFIER_METRICS_PORT",
    "PRS_SCHEDULER_METRICS_PORT",
)
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
CLI_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Stack:
    """The five service processes of one test, with what is needed to reach and stop them."""

    env: dict[str, str]
    gateway_url: str
    api_key: str
    log_dir: Path
    processes: list[ServiceProcess] = field(default_factory=list)

    def start(self, names: Sequence[str] = SERVICES) -> None:
        """Start the services ``names`` (all five unless told), each once."""
        # The same console scripts deploy/Procfile runs under `make run`, from the same directory.
        for name in names:
            log = self.log_dir / f"{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [str(BIN / f"prs-{name}")],
                    cwd=REPO,
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.processes.append(ServiceProcess(name, process, log))

    def logs(self) -> str:
        parts = []
        for p in self.processes:
            code = p.process.poll()
            state = "running" if code is None else f"exited {code}"
            parts.append(f"--- {p.name} ({state}), last lines of {p.log.name}:\n{p.tail()}")
        return "\n".join(parts)

    def assert_all_running(self, when: str) -> None:
        dead = [p.name for p in self.processes if p.process.poll() is not None]
        assert not dead, f"{', '.join(dead)} exited {when}\n{self.logs()}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer"
        with httpx.Client(base_url=self.gateway_url, timeout=2.0) as http:
            while time.monotonic() < deadline:
                self.assert_all_running("while starting")
                try:
                    response = http.get("/readyz")
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text}"
                except httpx.TransportError as exc:
                    last = repr(exc)
                time.sleep(0.2)
        pytest.fail(f"gateway not ready within {READY_TIMEOUT}s ({last})\n{self.logs()}")

    @property
    def data_dir(self) -> Path:
        return Path(self.env["PRS_DATA_DIR"])

    def http(self) -> httpx.Client:
        """A client of the gateway, authenticated with the admin key."""
        return httpx.Client(
            base_url=self.gateway_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=10.0,
        )

    def prs(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            **self.env,
            "PRS_GATEWAY_URL": self.gateway_url,
            "PRS_API_KEY": self.api_key,
            "COLUMNS": "200",
            "NO_COLOR": "1",
        }
        return subprocess.run(
            [str(BIN / "prs"), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
            input=input_text,
        )

    def prs_json(self, *args: str, ok: tuple[int, ...] = (0,)) -> Any:
        """Run `prs --json ...`, check the exit code is one of ``ok``, and parse stdout."""
        result = self.prs("--json", *args)
        assert result.returncode in ok, f"prs {' '.join(args)}: {output_of(result)}\n{self.logs()}"
        try:
            return json.loads(result.stdout)
        except ValueError:
            pytest.fail(f"prs {' '.join(args)} printed no JSON: {output_of(result)}")

    def terminate(self) -> dict[str, int | None]:
        """SIGTERM every service at once (as honcho does) and collect the exit codes."""
        for p in self.processes:
            if p.process.poll() is None:
                p.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        codes: dict[str, int | None] = {}
        for p in self.processes:
            try:
                codes[p.name] = p.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                codes[p.name] = None
        return codes

    def kill(self) -> None:
        for p in self.processes:
            if p.process.poll() is None:
                p.process.kill()
                p.process.wait(timeout=10)


def make_stack(amqp_url: str, namespace: str, tmp_path: Path, **extra_env: str) -> Stack:
    """The five services' settings for one test (or module), not started yet."""
    # Nothing from the developer's shell may leak in: the test's namespace, data directory and
    # ports must be the only ones the services see.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRS_") and k != "AMQP_URL"}
    api_key = secrets.token_urlsafe(24)
    port = free_port()
    env.update(
        {
            "AMQP_URL": amqp_url,
            "PRS_NAMESPACE": namespace,
            "PRS_DATA_DIR": str(tmp_path / "data"),
            "PRS_ADMIN_API_KEY": api_key,
            "PRS_GATEWAY_PORT": str(port),
            "PRS_LOG_JSON": "false",
            # Webhook receivers in these tests listen on loopback, refused otherwise.
            "PRS_WEBHOOK_ALLOW_PRIVATE": "true",
            # The journeys trigger processes themselves; timed runs would race their counts.
            "PRS_SCHEDULER_DISABLED_JOBS": ",".join(
                (
                    "deal_verification_reminders",
                    "commission_calculation",
                    "audit_report_generation",
                    "overdue_detection",
                    "system_cleanup",
                    "health_monitoring",
                    "task_monitoring",
                    "failed_task_cleanup",
                )
            ),
            **dict.fromkeys(WORKER_METRICS_PORTS, "0"),
            **extra_env,
        }
    )
    (tmp_path / "data").mkdir()
    return Stack(env, f"http://127.0.0.1:{port}", api_key, tmp_path)


@pytest.fixture
def stack(amqp_url: str, namespace: str, tmp_path: Path) -> Iterator[Stack]:
    services = make_stack(amqp_url, namespace, tmp_path)
    try:
        services.start()
        yield services
    finally:
        # Stopped before the namespace fixture deletes the queues, so none is declared again.
        services.kill()


def output_of(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
