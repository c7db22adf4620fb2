"""Webhooks: endpoint policy (SSRF), signatures, and delivery with retries through the service."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import select

from notifier import signing
from notifier.adapters.webhook_client import EndpointPolicy, EndpointUnreachable, UnsafeEndpoint
from notifier.models import WebhookAttempt, WebhookDelivery
from prs_shared.messaging.deals import DEAL_VERIFIED
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.messages import TaskLifecycle, TaskStatus
from prs_shared.messaging.webhooks import REGISTER_WEBHOOK

SECRET = "whsec-0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fe80::1]/hook",
        "https://0.0.0.0/hook",
    ],
)
async def test_loopback_private_and_link_local_endpoints_are_refused(url: str) -> None:
    with pytest.raises(UnsafeEndpoint, match="non-public"):
        await EndpointPolicy().vet(url)


async def test_a_name_resolving_to_a_private_address_is_refused_whatever_else_it_resolves_to() -> (
    None
):
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.7"]

    with pytest.raises(UnsafeEndpoint, match=r"10\.0\.0\.7"):
        await EndpointPolicy(resolver=resolver).vet("https://hooks.example.com/x")


async def test_public_https_endpoints_pass_and_plain_http_or_credentials_do_not() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    policy = EndpointPolicy(resolver=resolver)
    target = await policy.vet("https://hooks.example.com/x")
    assert [str(a) for a in target.addresses] == ["93.184.215.14"]
    with pytest.raises(UnsafeEndpoint, match="https"):
        await policy.vet("http://hooks.example.com/x")
    with pytest.raises(UnsafeEndpoint, match="credentials"):
        await policy.vet("https://user:pw@hooks.example.com/x")


async def test_an_unresolvable_host_is_unreachable_not_unsafe() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(EndpointUnreachable):
        await EndpointPolicy(resolver=resolver).vet("https://nowhere.example.com/x")


def test_a_signature_verifies_and_any_change_breaks_it() -> None:
    body = b'{"a":1}'
    now = int(time.time())
    header = signing.signature(SECRET, now, body)
    assert header.startswith("v1=")
    assert len(header) == 3 + 64
    assert signing.verify(SECRET, str(now), body, header, now=now)
    assert not signing.verify(SECRET, str(now), b'{"a":2}', header, now=now)
    assert not signing.verify("another-secret-of-enough-length", str(now), body, header, now=now)
    assert not signing.verify(SECRET, str(now + 1), body, header, now=now)
    assert not signing.verify(SECRET, str(now), body, header, now=now + 3600)  # replayed later


def register(url: str, org: str = "org-1") -> Envelope:
    return Envelope(
        type=REGISTER_WEBHOOK.type,
        organization_id=org,
        task_id=uuid.uuid4(),
        payload={"url": url, "event_types": ["deal.verified"], "secret": SECRET},
    )


def deal_verified(org: str = "org-1") -> Envelope:
    return Envelope(
        type=DEAL_VERIFIED.type,
        organization_id=org,
        payload={
            "deal_id": "D-1",
            "organization_id": org,
            "client_name": "Globex",
            "value": "1200.00",
            "currency": "USD",
            "salesperson_id": "u-sales",
            "checks": ["amount", "attachments"],
        },
    )


def outcome(events: list[Envelope], task_id: uuid.UUID) -> TaskLifecycle | None:
    for e in events:
        if e.task_id == task_id and e.type in ("task.succeeded", "task.failed"):
            return TaskLifecycle.model_validate(e.payload)
    return None


async def test_a_deal_event_is_delivered_signed_and_retried_until_the_endpoint_answers(
    kit, run_notifier, database_url, publisher, hook_receiver, tap, smtp_sink
) -> None:
    events = await tap("task.#")
    hook_receiver.statuses = [500, 503]
    registration = register(hook_receiver.url)
    async with run_notifier(
        database_url, webhook_allow_private=True, webhook_retry_base_delay=0.1
    ) as host:
        await kit.seed_directory(publisher, host)
        await publisher.publish(registration)
        await events.wait_for(lambda s: outcome(s, registration.task_id) is not None)
        event = deal_verified()
        await publisher.publish(event)

        async def delivered() -> WebhookDelivery | None:
            async with host.sessions() as session:
                row = await session.scalar(select(WebhookDelivery))
                return row if row is not None and row.status == "delivered" else None

        delivery = await kit.eventually(delivered, message="webhook delivered")
        async with host.sessions() as session:
            attempts = (
                await session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.attempt))
            ).all()
        await kit.eventually(lambda: _sync(len(smtp_sink.received) == 1), message="email sent")
    registered = outcome(events.seen, registration.task_id)
    assert registered is not None
    assert registered.status is TaskStatus.SUCCEEDED
    assert [a.status_code for a in attempts] == [500, 503, 200]
    assert delivery.attempts == 3
    assert len(hook_receiver.requests) == 3
    last = hook_receiver.requests[-1]
    assert last.path == "/hooks/prs"
    assert signing.verify(
        SECRET,
        last.headers["x-prs-timestamp"],
        last.body,
        last.headers["x-prs-signature"],
        now=time.time(),
    )
    assert last.headers["x-prs-event"] == "deal.verified"
    assert last.headers["x-prs-delivery"] == delivery.id
    document = json.loads(last.body)
    assert document["event_id"] == str(event.id)
    assert document["data"]["client_name"] == "Globex"
    # Every retry carries the same delivery id and body.
    assert {r.headers["x-prs-delivery"] for r in hook_receiver.requests} == {delivery.id}
    assert {r.body for r in hook_receiver.requests} == {last.body}


async def _sync(value: bool) -> bool:
    return value


async def test_registering_a_private_endpoint_fails_without_the_development_switch(
    run_notifier, publisher, tap
) -> None:
    events = await tap("task.#")
    attempts = [
        register(url)
        for url in (
            "https://127.0.0.1/hook",
            "https://10.0.0.8/hook",
            "https://169.254.169.254/hook",
            "http://93.184.215.14/hook",
        )
    ]
    async with run_notifier() as _:
        for envelope in attempts:
            await publisher.publish(envelope)
        await events.wait_for(lambda s: all(outcome(s, e.task_id) for e in attempts))
    for envelope in attempts:
        result = outcome(events.seen, envelope.task_id)
        assert result is not None
        assert result.status is TaskStatus.FAILED
        assert "webhook endpoint refused" in (result.error or "")
