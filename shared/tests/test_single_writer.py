"""A second process on one SQLite file is refused at start, with what to do instead."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from prs_shared.db import single_writer

HOLD = textwrap.dedent(
    """
    import asyncio, sys
    from prs_shared.db import single_writer

    async def main():
        try:
            await single_writer.claim(sys.argv[1], wait=0.5)
        except single_writer.DatabaseInUse:
            print("refused", flush=True)
            return
        print("held", flush=True)
        sys.stdin.read()

    asyncio.run(main())
    """
)


def hold(url: str) -> subprocess.Popen[str]:
    """Another process holding the database until its stdin closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.asyncio
async def test_a_second_process_is_refused_naming_the_holder_and_postgresql(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'scheduler.sqlite3'}"
    holder = hold(url)
    try:
        with pytest.raises(single_writer.DatabaseInUse) as refused:
            await single_writer.claim(url, wait=0.5)
        message = str(refused.value)
        assert f"pid {holder.pid}" in message
        assert "scheduler.sqlite3" in message
        assert "PostgreSQL" in message
    finally:
        holder.kill()
        holder.wait()
    # The kernel dropped the killed holder's lock: the database is free again.
    release = await single_writer.claim(url, wait=0.5)
    release()


def another_process_claims(url: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", HOLD, url],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.asyncio
async def test_one_process_may_hold_it_twice_and_releases_when_both_are_done(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.sqlite3'}"
    first = await single_writer.claim(url)
    second = await single_writer.claim(url)
    first()
    assert another_process_claims(url) == "refused"
    second()
    assert another_process_claims(url) == "held"


@pytest.mark.asyncio
async def test_postgresql_and_memory_databases_are_not_locked(tmp_path: Path) -> None:
    assert single_writer.lock_path("postgresql+asyncpg://postgres@127.0.0.1/prs") is None
    assert single_writer.lock_path("sqlite+aiosqlite:///:memory:") is None
    assert (
        single_writer.lock_path(f"sqlite+aiosqlite:///{tmp_path}/x.sqlite3")
        == (tmp_path / "x.sqlite3.lock").resolve()
    )
    assert not os.path.exists(tmp_path / "x.sqlite3.lock")


def test_a_second_replica_of_a_service_on_sqlite_exits_with_one_line(
    tmp_path: Path, amqp_url: str, namespace: str
) -> None:
    env = {
        **os.environ,
        "AMQP_URL": amqp_url,
        "PRS_NAMESPACE": namespace,
        "PRS_DATA_DIR": str(tmp_path),
        "PRS_DEAL_WORKFLOW_METRICS_PORT": "0",
        "PRS_LOG_JSON": "false",
    }
    command = [sys.executable, "-m", "deal_workflow.main"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert first.stdout is not None
        for line in first.stdout:
            if b"started as" in line:
                break
        else:
            raise AssertionError("the first replica did not start")
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=90)
        assert second.returncode == 1
        output = second.stdout + second.stderr
        assert "in use by another process" in output
        assert f"pid {first.pid}" in output
        assert "Traceback" not in output
        assert first.poll() is None, "the first replica must keep running"
    finally:
        first.terminate()
        first.wait(timeout=60)
