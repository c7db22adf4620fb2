"""PRS_QUEUE_TYPE: the arguments each queue is declared with, classic (default) or quorum."""

from __future__ import annotations

import pytest

from prs_shared.messaging.topology import MAX_PRIORITY, Topology
from prs_shared.testing.worker import ProbeSettings


def test_classic_work_queues_keep_their_priorities_and_no_quorum_argument() -> None:
    args = Topology(namespace="n.").work_queue_arguments("n.workflow")
    assert args == {
        "x-queue-type": "classic",
        "x-max-priority": MAX_PRIORITY,
        "x-dead-letter-exchange": "n.prs.dlx",
        "x-dead-letter-routing-key": "n.workflow",
    }
    assert Topology().plain_queue_arguments() == {}
    assert Topology().delay_queue_arguments() == {"x-dead-letter-exchange": "prs.redeliver"}


def test_quorum_work_queues_dead_letter_at_least_once_past_the_delivery_limit() -> None:
    t = Topology(namespace="n.", queue_type="quorum", delivery_limit=7)
    args = t.work_queue_arguments("n.workflow")
    assert args["x-queue-type"] == "quorum"
    assert args["x-delivery-limit"] == 7
    assert args["x-dead-letter-strategy"] == "at-least-once"
    assert args["x-overflow"] == "reject-publish"
    assert args["x-dead-letter-routing-key"] == "n.workflow"
    assert "x-max-priority" not in args
    assert t.plain_queue_arguments() == {"x-queue-type": "quorum"}
    assert t.delay_queue_arguments()["x-dead-letter-strategy"] == "at-least-once"


def test_the_queue_type_comes_from_prs_queue_type(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ProbeSettings().queue_type == "classic"
    monkeypatch.setenv("PRS_QUEUE_TYPE", "quorum")
    assert ProbeSettings().queue_type == "quorum"
    monkeypatch.setenv("PRS_QUEUE_TYPE", "stream")
    with pytest.raises(ValueError, match="queue_type"):
        ProbeSettings()


def test_several_broker_urls_are_read_from_amqp_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from prs_shared.messaging.failover import broker_addresses, split_urls

    value = "amqp://u:p@a:5681/, amqp://u:p@b:5682/,"
    assert split_urls(value) == ["amqp://u:p@a:5681/", "amqp://u:p@b:5682/"]
    assert broker_addresses(value) == "a:5681, b:5682"
    monkeypatch.setenv("AMQP_URL", " , ")
    with pytest.raises(ValueError, match="AMQP_URL"):
        ProbeSettings()
