"""Running the compose load balancer's configuration (deploy/nginx/gateway.conf) in tests.

Debian's nginx (`make nginx` unpacks it under .venv) serves the file with a few named
substitutions, each checked to hit exactly one line, inside a minimal nginx.conf standing in for
the one of the nginx image; everything nginx writes stays in the test's directory.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
NGINX = REPO / ".venv" / "nginx" / "usr" / "sbin" / "nginx"
CONF = REPO / "deploy" / "nginx" / "gateway.conf"
START_TIMEOUT = 60.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} not ready after {START_TIMEOUT:.0f}s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # nginx: fast shutdown; prs-gateway: graceful
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def running_nginx(
    tmp_path: Path, substitutions: dict[str, str], ready_path: str = "/readyz"
) -> Iterator[str]:
    """deploy/nginx/gateway.conf served with ``substitutions``; yields the proxy's URL."""
    if not NGINX.is_file():
        pytest.fail(f"{NGINX} is missing: run `make nginx` (Debian's nginx, unpacked under .venv)")
    port = free_port()
    server = CONF.read_text()
    for old, new in {**substitutions, "listen 8000;": f"listen 127.0.0.1:{port};"}.items():
        assert server.count(old) == 1, f"{old!r} is not one line of {CONF}"
        server = server.replace(old, new)
    root = tmp_path / "nginx"
    root.mkdir()
    (root / "gateway.conf").write_text(server)
    temp_paths = "".join(
        f"  {kind}_temp_path {root / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (root / "nginx.conf").write_text(
        f"pid {root / 'nginx.pid'};\n"
        "error_log stderr notice;\n"
        "events {}\n"
        "http {\n"
        f"{temp_paths}"
        "  access_log off;\n"
        f"  include {root / 'gateway.conf'};\n"
        "}\n"
    )
    command = [str(NGINX), "-e", "stderr", "-p", str(root), "-c", str(root / "nginx.conf")]
    checked = subprocess.run(
        [*command, "-t"], capture_output=True, text=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stderr
    log = tmp_path / "nginx.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{url}{ready_path}", process, log)
        yield url
    finally:
        stop(process)
