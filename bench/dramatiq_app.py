"""The Dramatiq peer: a RabbitMQ broker with publisher confirms and one actor that records its
completion in Redis.

The worker is started as ``dramatiq bench.dramatiq_app:setup`` and configured through the
environment; the benchmark builds the same broker and actor with :func:`make_broker`, so both
sides agree on the queue and the actor's name.
"""

from __future__ import annotations

import os
import time

import dramatiq
import redis
from dramatiq import Actor
from dramatiq.brokers.rabbitmq import RabbitmqBroker

QUEUE_ENV = "PRS_BENCH_DRAMATIQ_QUEUE"
BROKER_ENV = "PRS_BENCH_DRAMATIQ_BROKER"
REDIS_ENV = "PRS_BENCH_DRAMATIQ_REDIS"
DEFAULT_BROKER = "amqp://guest:guest@localhost:5672/"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_QUEUE = "bench_dramatiq"
ACTOR = "bench_record"

# One client per worker process, made on first use: the pool processes are forked, and a
# connection pool must not cross a fork.
_client: tuple[int, redis.Redis] | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None or _client[0] != os.getpid():
        _client = (os.getpid(), redis.Redis.from_url(os.environ.get(REDIS_ENV, DEFAULT_REDIS)))
    return _client[1]


def record(key: str, sent: float) -> None:
    """The task: append how long it took from send to done to the list ``key``; the list's
    length is the number of completed tasks."""
    _redis().rpush(key, f"{time.time() - sent:.6f}")


def make_broker(url: str, queue: str) -> tuple[RabbitmqBroker, Actor[[str, float], None]]:
    """The broker and the actor on it.

    Dramatiq publishes persistent messages to durable queues and acks a message after its actor
    returned; publisher confirms (one awaited per message) it must be asked for.
    """
    broker = RabbitmqBroker(url=url, confirm_delivery=True)
    actor = dramatiq.actor(broker=broker, actor_name=ACTOR, queue_name=queue)(record)
    return broker, actor


def setup() -> None:
    """Entry point of ``dramatiq bench.dramatiq_app:setup``: the worker's broker and actor."""
    broker, _ = make_broker(
        os.environ.get(BROKER_ENV, DEFAULT_BROKER), os.environ.get(QUEUE_ENV, DEFAULT_QUEUE)
    )
    dramatiq.set_broker(broker)
