"""The README's recipe "Adding a task type", followed to the letter, against the real broker.

The code blocks of that README section are the ones in this file (the first test checks it), so
the recipe cannot drift from the code that runs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from pydantic import BaseModel, Field

from prs_shared.diagnostics import base_handlers
from prs_shared.messaging import catalog
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.handlers import Handler, HandlerContext, HandlerRegistry
from prs_shared.messaging.messages import Message, TaskLifecycle, TaskStatus
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.runtime import ERROR_HEADER, REASON_HEADER
from prs_shared.messaging.topology import Topology
from prs_shared.testing.fixtures import BrokerProbe, EventTap, eventually, final_lifecycle
from prs_shared.testing.hosts import running_host
from prs_shared.testing.probe import MIGRATIONS
from prs_shared.testing.worker import ProbeSettings

README = Path(__file__).parents[2] / "README.md"

# 1. The catalog entry ---------------------------------------------------------------------------


class CountWords(Message):
    """Count the words of a text."""

    text: str = Field(max_length=10_000, description="The text whose words are counted.")


COUNT_WORDS = catalog.command(
    "example.count_words", CountWords, "system", "Count the words of a text."
)

# 2. The handler ---------------------------------------------------------------------------------


class WordCount(BaseModel):
    words: int


async def count_words(payload: CountWords, ctx: HandlerContext, deps: None) -> WordCount:
    """The words of the text, split at whitespace."""
    return WordCount(words=len(payload.text.split()))


# 3. The composition root ------------------------------------------------------------------------


def handlers() -> HandlerRegistry:
    return HandlerRegistry(
        [
            *base_handlers(),
            Handler(COUNT_WORDS, count_words, None),
        ]
    )


# ------------------------------------------------------------------------------------------------


def _recipe_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Adding a task type\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def _lines(code: str) -> list[str]:
    return [line.strip() for line in code.splitlines() if line.strip()]


def test_the_readme_recipe_shows_the_code_of_this_test() -> None:
    blocks = _recipe_blocks()
    assert len(blocks) >= 3, "the recipe shows the entry, the handler and the composition root"
    mine = _lines(Path(__file__).read_text(encoding="utf-8"))
    for block in blocks:
        wanted = _lines(block)
        found = any(mine[i : i + len(wanted)] == wanted for i in range(len(mine)))
        assert found, f"README recipe block not in {Path(__file__).name}:\n{block}"


def test_the_registry_knows_the_new_type_as_a_command() -> None:
    registry = handlers()
    assert COUNT_WORDS.type in registry.command_types()
    handler = registry.get(COUNT_WORDS.type)
    assert handler is not None
    assert handler.message.payload is CountWords


def test_a_handler_whose_payload_is_not_its_catalog_entrys_is_refused() -> None:
    entry = catalog.MessageSpec("example.count_words", "command", Message, "other", "system")
    with pytest.raises(ValueError, match="not the catalog's entry"):
        Handler(entry, count_words, None)  # type: ignore[arg-type]


def test_two_handlers_for_one_type_are_refused() -> None:
    with pytest.raises(ValueError, match="two handlers"):
        HandlerRegistry([Handler(COUNT_WORDS, count_words, None)] * 2)


def _task(payload: dict[str, Any]) -> Envelope:
    return Envelope(type=COUNT_WORDS.type, payload=payload, task_id=uuid.uuid4())


async def test_the_new_task_runs_and_a_payload_that_breaks_its_model_is_dead_lettered_with_why(
    amqp_url: str,
    namespace: str,
    database_url: str,
    publisher: Publisher,
    broker: BrokerProbe,
    topology: Topology,
    tap: Callable[..., Awaitable[EventTap]],
) -> None:
    settings = ProbeSettings(
        amqp_url=amqp_url, namespace=namespace, database_url=database_url, heartbeat_interval=60
    )
    events = await tap("task.#")
    good = _task({"text": "one two  three"})
    bad = _task({"text": 3})
    async with running_host(
        settings, handlers=handlers(), command_queues=("system",), migrations=MIGRATIONS
    ):
        await publisher.publish(good)
        seen = await events.wait_for(lambda s: final_lifecycle(s, good.task_id) is not None)
        await publisher.publish_raw(
            topology.commands_exchange,
            "system",
            aio_pika.Message(bad.model_dump_json().encode(), message_id=str(bad.id)),
        )
        dead = await eventually(
            lambda: broker.get_all(topology.dlq(topology.queue("system"))),
            message="the bad payload in the DLQ",
        )
    done = final_lifecycle(seen, good.task_id)
    assert isinstance(done, TaskLifecycle)
    assert done.status == TaskStatus.SUCCEEDED
    assert done.result == {"words": 3}
    assert dead[0].headers[REASON_HEADER] == "schema_mismatch"
    assert "text" in str(dead[0].headers[ERROR_HEADER])
