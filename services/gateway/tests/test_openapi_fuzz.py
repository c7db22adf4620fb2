"""Property-based fuzzing of the whole OpenAPI document: no 500, no response off its schema.

The gateway runs as a real server process (uvicorn) with a valid admin key; schemathesis
generates requests from the OpenAPI document, valid and invalid, for every operation.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

ADMIN_KEY = secrets.token_urlsafe(24)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def gateway_url(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("fuzz")
    port = _free_port()
    namespace = f"fuzz{secrets.token_hex(4)}."
    env = {
        **os.environ,
        "AMQP_URL": amqp_url,
        "PRS_NAMESPACE": namespace,
        "PRS_DATA_DIR": str(data),
        "PRS_GATEWAY_PORT": str(port),
        "PRS_ADMIN_API_KEY": ADMIN_KEY,
        "PRS_RATE_LIMIT_BURST": "100000",
        "PRS_LOG_LEVEL": "WARNING",
        "PRS_LOG_JSON": "false",
    }
    log = (data / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.main"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"gateway did not start:\n{Path(log.name).read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
        _delete_namespace(amqp_url, namespace)


def _delete_namespace(amqp_url: str, namespace: str) -> None:
    import asyncio

    import aio_pika

    from prs_shared.messaging.topology import Topology, delete_all
    from prs_shared.testing.fixtures import KNOWN_SERVICES

    async def clean() -> None:
        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel()
        await delete_all(channel, Topology(namespace=namespace), KNOWN_SERVICES)
        await connection.close()

    asyncio.run(clean())


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_operation_answers_500_or_off_schema(gateway_url: str, mode: GenerationMode) -> None:
    api = schemathesis.openapi.from_url(f"{gateway_url}/openapi.json")
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 20  # the seed's nine endpoints and the administration ones
    failures: list[str] = []
    exercised = 0
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: Any) -> None:
            case.call_and_validate(
                base_url=gateway_url,
                headers=headers,
                checks=[not_a_server_error, response_schema_conformance],
            )

        try:
            exercise()
            exercised += 1
        except Unsatisfiable:
            # Nothing about this operation can be made invalid (no parameters, no body).
            continue
        except Exception as exc:  # collect every operation's failure, not only the first
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
    assert exercised >= 15
