"""A key scoped to one organization against another organization's tasks and dead letters.

Status, list, download, cancel, retry and every dead-letter view must show nothing of the other
organization and change nothing of it, and each refusal must read exactly like the one for an
id that does not exist (404, same words) — the gateway's tenancy convention.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from gateway.models import DeadLetter, Report, SentNotification, Task
from prs_shared.messaging.envelope import Envelope, utcnow

from .conftest import Gateway

pytestmark = pytest.mark.asyncio

MINE, THEIRS = "org-a", "org-b"
DEAL = {"deal_id": "D-1", "workflow_action": "generate_invoice"}


def _sessions(gateway: Gateway) -> Any:
    return gateway.app.state.gateway.host.sessions


async def _finished_task(
    gateway: Gateway, organization_id: str, status: str, result: dict[str, Any] | None = None
) -> str:
    """A task of the organization as the registry holds it once a worker reported its end."""
    task_id = str(uuid.uuid4())
    now = utcnow()
    async with _sessions(gateway)() as session, session.begin():
        session.add(
            Task(
                task_id=task_id,
                task_type="deal.process_workflow",
                queue="workflow",
                priority="medium",
                status=status,
                organization_id=organization_id,
                queued_by=f"operator of {organization_id}",
                attempts=1,
                payload=DEAL,
                result=result,
                error=None if status == "SUCCEEDED" else "deal D-1 is not known",
                queued_at=now - timedelta(seconds=2),
                finished_at=now,
                updated_at=now,
                message_id=str(uuid.uuid4()),
            )
        )
    return task_id


async def _dead_letter(
    gateway: Gateway, organization_id: str, task_id: str, body: bytes | None = None
) -> str:
    """A dead letter of the organization, as the archive stores one from a DLQ."""
    envelope = Envelope(
        type="deal.process_workflow",
        payload=DEAL,
        organization_id=organization_id,
        task_id=uuid.UUID(task_id),
    )
    letter_id = str(uuid.uuid4())
    async with _sessions(gateway)() as session, session.begin():
        session.add(
            DeadLetter(
                id=letter_id,
                message_id=str(envelope.id),
                queue=gateway.settings.namespace + "workflow",
                message_type=envelope.type,
                task_id=task_id,
                organization_id=organization_id,
                reason="retries_exhausted",
                attempts=4,
                last_error="TransientError: deal D-1 is not known (yet) to deal-workflow",
                headers={"x-dead-letter-reason": "retries_exhausted"},
                body=body if body is not None else envelope.model_dump_json().encode(),
                dead_lettered_at=utcnow(),
            )
        )
    return letter_id


def _words(response: Any, ids: list[str]) -> tuple[int, str, str]:
    """Status, title and detail of a problem, with the ids in it blanked out."""
    body = response.json()
    detail = body.get("detail", "")
    for i in ids:
        detail = detail.replace(i, "<id>")
    return response.status_code, body.get("title", ""), detail


async def test_a_scoped_key_sees_and_touches_no_task_or_dead_letter_of_another_organization(
    gateway: Gateway,
) -> None:
    mine = gateway.auth(await gateway.make_key("operator", MINE))
    theirs = gateway.auth(await gateway.make_key("operator", THEIRS))
    my_admin = gateway.auth(await gateway.make_key("admin", MINE))
    client = gateway.client

    queued = await client.post(
        "/api/background-tasks/queue-deal-processing/", json=DEAL, headers=theirs
    )
    assert queued.status_code == 202
    their_queued = queued.json()["task_id"]
    invoice_key = f"invoices/{THEIRS}/2026/INV-2026-000001.pdf"
    gateway.app.state.gateway.files.put(invoice_key, b"%PDF-1.7 theirs")
    their_invoice = await _finished_task(gateway, THEIRS, "SUCCEEDED", {"file_key": invoice_key})
    their_failure = await _finished_task(gateway, THEIRS, "DEAD_LETTERED")
    their_letter = await _dead_letter(gateway, THEIRS, their_failure)
    nobody = str(uuid.uuid4())

    # Each task view: another organization's task reads exactly like a task that never was.
    for method, path in [
        ("GET", "/api/background-tasks/{}/status/"),
        ("GET", "/api/background-tasks/{}/download/"),
        ("POST", "/api/background-tasks/{}/cancel/"),
        ("POST", "/api/background-tasks/{}/retry/"),
    ]:
        for theirs_id in (their_queued, their_invoice, their_failure):
            other = await client.request(method, path.format(theirs_id), headers=mine)
            unknown = await client.request(method, path.format(nobody), headers=mine)
            assert other.status_code == 404, (method, path, other.text)
            assert _words(other, [theirs_id]) == _words(unknown, [nobody])

    listed = await client.get("/api/background-tasks/", headers=mine)
    assert listed.json()["total"] == 0
    named = await client.get(
        "/api/background-tasks/", params={"organization_id": THEIRS}, headers=mine
    )
    assert named.status_code == 403

    # Dead letters: not listed, not counted, not shown, not replayed, not purged.
    letters = await client.get("/api/dead-letters/", headers=mine)
    assert letters.json() == {"items": [], "total": 0, "by_queue": {}}
    for method, path in [
        ("GET", "/api/dead-letters/{}"),
        ("POST", "/api/dead-letters/{}/replay"),
    ]:
        other = await client.request(method, path.format(their_letter), headers=mine)
        unknown = await client.request(method, path.format(nobody), headers=mine)
        assert other.status_code == 404, (method, path, other.text)
        assert _words(other, [their_letter]) == _words(unknown, [nobody])
    queue = gateway.settings.namespace + "workflow"
    replayed = await client.post("/api/dead-letters/replay", params={"queue": queue}, headers=mine)
    assert replayed.json() == {"replayed": 0}
    purged = await client.delete("/api/dead-letters/", headers=my_admin)
    assert purged.json() == {"purged": 0}

    # Everything of theirs is as it was, and still theirs to see.
    async with _sessions(gateway)() as session:
        tasks = {
            t.task_id: t
            for t in (
                await session.execute(
                    select(Task)
                    .where(Task.organization_id == THEIRS)
                    .execution_options(populate_existing=True)
                )
            ).scalars()
        }
        letter = await session.get(DeadLetter, their_letter)
    assert tasks[their_queued].cancel_requested_at is None
    assert tasks[their_failure].status == "DEAD_LETTERED"
    assert letter is not None
    assert letter.replayed_at is None
    download = await client.get(f"/api/background-tasks/{their_invoice}/download/", headers=theirs)
    assert download.status_code == 200
    assert download.content == b"%PDF-1.7 theirs"
    assert (await client.get("/api/dead-letters/", headers=theirs)).json()["total"] == 1


async def test_a_forged_dead_letter_cannot_requeue_another_organizations_task(
    gateway: Gateway,
) -> None:
    """The organization of a dead letter comes from its body; the task it names is checked."""
    mine = gateway.auth(await gateway.make_key("operator", MINE))
    their_task = await _finished_task(gateway, THEIRS, "FAILED")
    forged = await _dead_letter(gateway, MINE, their_task)
    replay = await gateway.client.post(f"/api/dead-letters/{forged}/replay", headers=mine)
    assert replay.json() == {"replayed": 1}
    async with _sessions(gateway)() as session:
        task = await session.get(Task, their_task)
    assert task is not None
    assert task.status == "FAILED"
    assert task.attempts == 1


@contextmanager
def _statements(gateway: Gateway) -> Iterator[list[str]]:
    """The SQL the gateway's engine runs inside the block."""
    seen: list[str] = []
    engine = gateway.app.state.gateway.host.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_the_dead_letter_list_previews_bodies_and_never_loads_them_whole(
    gateway: Gateway,
) -> None:
    task_id = await _finished_task(gateway, MINE, "DEAD_LETTERED")
    big = b'{"payload": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    letter_id = await _dead_letter(gateway, MINE, task_id, body=big)

    with _statements(gateway) as statements:
        listed = await gateway.client.get("/api/dead-letters/", headers=gateway.auth())
    [item] = listed.json()["items"]
    assert item["body_bytes"] == len(big)
    assert item["body_truncated"] is True
    assert big.decode().startswith(item["body_preview"])
    assert 0 < len(item["body_preview"].encode()) <= 2048
    # The list's queries only ever touch the body column through substr() and length().
    reads = [
        s for s in statements if "dead_letters" in s and s.lstrip().upper().startswith("SELECT")
    ]
    assert reads
    for statement in reads:
        bare = re.sub(r"(substr|length)\(dead_letters\.body\b", "", statement)
        assert "dead_letters.body" not in bare, statement

    detail = await gateway.client.get(f"/api/dead-letters/{letter_id}", headers=gateway.auth())
    assert detail.json()["body"]["payload"] == big.decode()[13:-2]
    assert detail.json()["body_bytes"] == len(big)


NAMING_ANOTHER_ORGANIZATION: list[tuple[str, dict[str, Any]]] = [
    ("/api/background-tasks/queue-deal-processing/", DEAL),
    (
        "/api/background-tasks/send-notification/",
        {"notification_type": "password_reset", "recipient_type": "user", "user_id": "u-1"},
    ),
    ("/api/automated-processes/trigger-verification-reminders/", {}),
    ("/api/automated-processes/trigger-commission-calculation/", {}),
    ("/api/automated-processes/trigger-overdue-detection/", {}),
    ("/api/automated-processes/generate-audit-report/", {"report_type": "deals", "days": 7}),
    (
        "/api/webhooks/",
        {
            "url": "https://hooks.example.com/x",
            "event_types": ["deal.verified"],
            "secret": "s" * 32,
        },
    ),
]


@pytest.mark.parametrize(
    ("path", "body"), NAMING_ANOTHER_ORGANIZATION, ids=[p for p, _ in NAMING_ANOTHER_ORGANIZATION]
)
async def test_a_body_naming_another_organization_is_refused_up_front_and_queues_nothing(
    gateway: Gateway, path: str, body: dict[str, Any]
) -> None:
    mine = gateway.auth(await gateway.make_key("operator", MINE))
    answers = []
    for named in (THEIRS, "org-nobody"):
        refused = await gateway.client.post(
            path, json={**body, "organization_id": named}, headers=mine
        )
        assert refused.status_code == 403, refused.text
        answers.append(_words(refused, [named]))
    # The same answer for an organization that exists and one that does not.
    assert answers[0] == answers[1]
    listed = await gateway.client.get("/api/background-tasks/", headers=gateway.auth())
    assert listed.json()["total"] == 0
    # The key's own organization, named or implied, is accepted.
    accepted = await gateway.client.post(path, json={**body, "organization_id": MINE}, headers=mine)
    assert accepted.status_code == 202, accepted.text


async def test_another_organizations_report_and_sent_mail_are_not_there_for_a_scoped_key(
    gateway: Gateway,
) -> None:
    mine = gateway.auth(await gateway.make_key("viewer", MINE))
    theirs = gateway.auth(await gateway.make_key("viewer", THEIRS))
    report_id = str(uuid.uuid4())
    gateway.app.state.gateway.files.put(f"reports/{report_id}.html", b"<h1>theirs</h1>")
    async with _sessions(gateway)() as session, session.begin():
        session.add(
            Report(
                report_id=report_id,
                organization_id=THEIRS,
                report_type="deals",
                days=30,
                files={"html": f"reports/{report_id}.html"},
                generated_at=utcnow(),
            )
        )
        session.add(
            SentNotification(
                event_id=str(uuid.uuid4()),
                organization_id=THEIRS,
                notification_type="password_reset",
                recipients=["someone@theirs.example"],
                status="sent",
                message_id="<x@prs.test>",
                at=utcnow(),
            )
        )
    path = "/api/automated-processes/reports/{}/download"
    nobody = str(uuid.uuid4())
    other = await gateway.client.get(path.format(report_id), headers=mine)
    unknown = await gateway.client.get(path.format(nobody), headers=mine)
    assert other.status_code == 404
    assert _words(other, [report_id]) == _words(unknown, [nobody])
    assert (
        await gateway.client.get("/api/automated-processes/reports/", headers=mine)
    ).json() == []
    log = await gateway.client.get("/api/notifications/", headers=mine)
    assert log.json() == {"items": [], "total": 0}
    # Theirs to see.
    assert (await gateway.client.get(path.format(report_id), headers=theirs)).status_code == 200
    assert (await gateway.client.get("/api/notifications/", headers=theirs)).json()["total"] == 1
