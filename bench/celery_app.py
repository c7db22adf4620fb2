"""The Celery application of the baseline: the seed's settings and one no-op task.

The worker is started as ``celery -A bench.celery_app worker`` and configured through the
environment, so the benchmark and its worker process build the same app from the same values.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

QUEUE_ENV = "PRS_BENCH_CELERY_QUEUE"
BROKER_ENV = "PRS_BENCH_CELERY_BROKER"
BACKEND_ENV = "PRS_BENCH_CELERY_BACKEND"
DEFAULT_BROKER = "amqp://guest:guest@localhost:5672/"
DEFAULT_BACKEND = "redis://127.0.0.1:6379/0"
DEFAULT_QUEUE = "bench.celery"
NOOP = "bench.noop"


def noop() -> None:
    """Does nothing: what is measured is the cost of getting a task run and its result stored."""


def make_app(broker: str, backend: str, queue: str) -> Any:
    # Celery ships no annotations; the app is handled as Any.
    app: Any = Celery("bench", broker=broker, backend=backend)
    app.conf.update(
        # The seed's Django/Celery settings.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        result_expires=3600,
        # Its own queue (and, by Celery's default, a direct exchange of the same name), so the
        # run neither takes nor leaves work on anyone else's queue.
        task_default_queue=queue,
        # The same durability as the other sections: Celery already publishes persistent
        # messages and, with acks_late, acks after the task; confirms it must be asked for.
        broker_transport_options={"confirm_publish": True},
        broker_connection_retry_on_startup=True,
    )
    app.task(name=NOOP)(noop)
    return app


app = make_app(
    os.environ.get(BROKER_ENV, DEFAULT_BROKER),
    os.environ.get(BACKEND_ENV, DEFAULT_BACKEND),
    os.environ.get(QUEUE_ENV, DEFAULT_QUEUE),
)
