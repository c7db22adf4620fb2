"""End to end: an operator key of one organization against another organization's objects.

With the five services as `make run` starts them and the demo data of two organizations, a key
scoped to Acme runs every task type on an Acme object (it works), on a Globex object and on an
object nobody has (both must end the same way, with the same error), then we look for side
effects where each service keeps them: Globex's invoice numbers, the file store, the notifier's
outbox, the audit report, and the gateway's task and dead-letter views.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from .conftest import Stack
from .test_deal_journey import emails_to

TERMINAL = {"SUCCEEDED", "FAILED", "DEAD_LETTERED", "CANCELLED"}
TASK_TIMEOUT = 60.0
ACTIONS = ("verify_deal", "calculate_commission", "update_payment_status", "generate_invoice")


class Client:
    """The gateway as one API key sees it."""

    def __init__(self, stack: Stack, key: str) -> None:
        self.stack = stack
        self.http = httpx.Client(
            base_url=stack.gateway_url, headers={"Authorization": f"Bearer {key}"}, timeout=10.0
        )

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def queued(self, response: httpx.Response) -> str:
        assert response.status_code == 202, response.text
        task_id: str = response.json()["task_id"]
        return task_id

    def deal(self, deal_id: str, action: str, **extra: Any) -> str:
        body = {"deal_id": deal_id, "workflow_action": action, "priority": "high", **extra}
        return self.queued(self.post("/api/background-tasks/queue-deal-processing/", json=body))

    def upload(self, file_type: str, owner_field: str, owner: str) -> str:
        data = _picture()
        response = self.post(
            "/api/background-tasks/queue-file-processing/",
            files={"file": ("picture.png", data, "image/png")},
            data={"file_type": file_type, owner_field: owner},
        )
        return self.queued(response)

    def notify(self, **body: Any) -> str:
        payload = {"notification_type": "password_reset", **body}
        payload.setdefault("additional_data", {"reset_url": "https://prs.example/reset/x"})
        return self.queued(self.post("/api/background-tasks/send-notification/", json=payload))

    def status(self, task_id: str) -> httpx.Response:
        return self.get(f"/api/background-tasks/{task_id}/status/")

    def wait(self, *task_ids: str) -> list[dict[str, Any]]:
        """Each task's final state, once all of them have one."""
        deadline = time.monotonic() + TASK_TIMEOUT
        done: dict[str, dict[str, Any]] = {}
        while len(done) < len(task_ids):
            for task_id in task_ids:
                if task_id not in done:
                    state = self.status(task_id).json()
                    if state["status"] in TERMINAL:
                        done[task_id] = state
            if time.monotonic() > deadline:
                pending = [t for t in task_ids if t not in done]
                pytest.fail(f"tasks {pending} not finished\n{self.stack.logs()}")
            time.sleep(0.25)
        return [done[t] for t in task_ids]

    def until_succeeded(self, queue: Callable[[], str], check: Callable[[Any], bool]) -> Any:
        """Queue again until a task succeeds as wanted: replicas fill from the seeded events."""
        deadline = time.monotonic() + TASK_TIMEOUT
        while True:
            [state] = self.wait(queue())
            if state["status"] == "SUCCEEDED" and check(state["result"]):
                return state
            if time.monotonic() > deadline:
                pytest.fail(f"never succeeded: {state}\n{self.stack.logs()}")
            time.sleep(0.5)


def _picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 64), (20, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def assert_refused_alike(theirs: dict[str, Any], unknown: dict[str, Any], ids: tuple[str, str]):
    """Another organization's object and a missing one: same end, attempts and error."""
    assert unknown["status"] in ("FAILED", "DEAD_LETTERED"), unknown
    assert (theirs["status"], theirs["attempts"]) == (unknown["status"], unknown["attempts"])
    assert (theirs["error"] or "").replace(ids[0], "<id>") == (unknown["error"] or "").replace(
        ids[1], "<id>"
    ), (theirs["error"], unknown["error"])
    assert theirs["result"] is None


def stored(files: Path, folder: str) -> list[str]:
    root = files / folder
    return sorted(str(p.relative_to(files)) for p in root.rglob("*") if p.is_file())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_scoped_key_reaches_only_its_own_organization_in_every_service(stack: Stack) -> None:
    stack.wait_ready()
    assert stack.prs_json("manage-background-tasks", "--action=test")["ok"] is True
    seeded = stack.prs_json("seed-demo")
    acme, globex = seeded["organizations"]
    admin = Client(stack, stack.api_key)

    def key(role: str, org: str) -> Client:
        created = admin.post(
            "/api/keys/", json={"name": f"{role} {org}", "role": role, "organization_id": org}
        )
        assert created.status_code == 201, created.text
        return Client(stack, created.json()["key"])

    ours, our_admin, theirs_key = key("operator", acme), key("admin", acme), key("operator", globex)
    mine, their, nobody = f"{acme}-deal-1", f"{globex}-deal-1", "demo-nobody-deal-1"
    year = datetime.now(UTC).year

    def verified(result: Any) -> bool:
        return bool(result["state"] == "verified")

    # Both valid deals verified (each by a key allowed to): Globex's could now be invoiced.
    ours.until_succeeded(lambda: ours.deal(mine, "verify_deal"), verified)
    admin.until_succeeded(
        lambda: admin.deal(their, "verify_deal", organization_id=globex), verified
    )

    # --- deal workflow: every action on theirs and on nobody's --------------------------------
    refused = {action: (ours.deal(their, action), ours.deal(nobody, action)) for action in ACTIONS}
    for theirs_id, nobody_id in refused.values():
        theirs_state, nobody_state = ours.wait(theirs_id, nobody_id)
        assert_refused_alike(theirs_state, nobody_state, (their, nobody))
    # The same key on its own deal: the rest of the workflow, up to the invoice.
    for action in ("calculate_commission", "update_payment_status"):
        [state] = ours.wait(ours.deal(mine, action))
        assert state["status"] == "SUCCEEDED", state
    [own_invoice] = ours.wait(ours.deal(mine, "generate_invoice"))
    assert own_invoice["status"] == "SUCCEEDED", own_invoice
    [their_invoice] = admin.wait(admin.deal(their, "generate_invoice", organization_id=globex))
    # No number was spent by the refused invoice: each organization's first is number 1.
    assert own_invoice["result"]["invoice_number"] == f"INV-{year}-000001"
    assert their_invoice["status"] == "SUCCEEDED", their_invoice
    assert their_invoice["result"]["invoice_number"] == f"INV-{year}-000001"
    files = stack.data_dir / "files"
    assert stored(files, f"invoices/{globex}") == [their_invoice["result"]["file_key"]]

    # --- file processing: a user's picture, a deal's attachment -------------------------------
    for file_type, field, own, other, missing, folder in (
        (
            "profile_picture",
            "user_id",
            f"{acme}-admin",
            f"{globex}-admin",
            "demo-nobody-admin",
            "profile_pictures",
        ),
        ("deal_attachment", "deal_id", mine, their, nobody, "deal_attachments"),
    ):
        done = ours.until_succeeded(
            lambda t=file_type, f=field, o=own: ours.upload(t, f, o), lambda r: True
        )
        # Every variant downloads through the task for its organization, and for no other.
        downloads = done["result"]["downloads"]
        assert set(downloads) == set(done["result"]["variants"])
        for url in downloads.values():
            mine_file = ours.get(url)
            assert mine_file.status_code == 200, mine_file.text
            assert mine_file.content
            assert theirs_key.get(url).status_code == 404
        if file_type == "profile_picture":
            by_size = ours.get(downloads["medium"].replace("=medium", "=256"))
            assert by_size.content == ours.get(downloads["medium"]).content
        theirs_state, nobody_state = ours.wait(
            ours.upload(file_type, field, other), ours.upload(file_type, field, missing)
        )
        assert_refused_alike(theirs_state, nobody_state, (other, missing))
        assert stored(files, f"{folder}/{other}") == []
        assert stored(files, f"{folder}/{missing}") == []
        assert stored(files, f"{folder}/{own}") != []

    # --- notifications: to a user, to an address ----------------------------------------------
    ours.until_succeeded(
        lambda: ours.notify(recipient_type="user", user_id=f"{acme}-sales"), lambda r: True
    )
    theirs_state, nobody_state = ours.wait(
        ours.notify(recipient_type="user", user_id=f"{globex}-sales"),
        ours.notify(recipient_type="user", user_id="demo-nobody-sales"),
    )
    assert_refused_alike(theirs_state, nobody_state, (f"{globex}-sales", "demo-nobody-sales"))
    own_address, their_address = f"salesperson@{acme}.example", f"admin@{globex}.example"
    missing_address = "someone@nowhere.example"
    [own_mail] = our_admin.wait(our_admin.notify(recipient_type="email", email=own_address))
    assert own_mail["status"] == "SUCCEEDED", own_mail
    theirs_state, nobody_state = our_admin.wait(
        our_admin.notify(recipient_type="email", email=their_address),
        our_admin.notify(recipient_type="email", email=missing_address),
    )
    assert_refused_alike(theirs_state, nobody_state, (their_address, missing_address))
    outbox = stack.data_dir / "outbox"
    for address in (f"salesperson@{globex}.example", their_address, missing_address):
        resets = [m for m in emails_to(outbox, address) if "reset" in m["Subject"].lower()]
        assert resets == [], address
    assert [m for m in emails_to(outbox, own_address) if "reset" in m["Subject"].lower()]

    # --- reports and webhooks: another organization named up front ----------------------------
    for path, body in (
        ("/api/automated-processes/generate-audit-report/", {"report_type": "deals"}),
        (
            "/api/webhooks/",
            {
                "url": "https://hooks.example.com/x",
                "event_types": ["deal.verified"],
                "secret": "s" * 32,
            },
        ),
    ):
        named = ours.post(path, json={**body, "organization_id": globex})
        assert named.status_code == 403, named.text
    [report] = ours.wait(
        ours.queued(ours.post("/api/automated-processes/generate-audit-report/", json={}))
    )
    assert report["status"] == "SUCCEEDED", report
    html = ours.get(f"/api/background-tasks/{report['task_id']}/download/?format=html")
    assert html.status_code == 200, html.text
    assert mine in html.text
    assert globex not in html.text

    # --- the gateway's views: Globex's task and dead letter do not exist for Acme ---------------
    [their_failure] = theirs_key.wait(theirs_key.deal(nobody, "verify_deal"))
    assert their_failure["status"] == "DEAD_LETTERED"
    unknown_id = "00000000-0000-4000-8000-000000000000"
    for task_id in (their_invoice["task_id"], their_failure["task_id"]):
        for path in ("/api/background-tasks/{}/status/", "/api/background-tasks/{}/download/"):
            other, missing = ours.get(path.format(task_id)), ours.get(path.format(unknown_id))
            assert other.status_code == missing.status_code == 404
            assert other.json()["detail"].replace(task_id, "<id>") == missing.json()[
                "detail"
            ].replace(unknown_id, "<id>")
    listed = ours.get("/api/background-tasks/", params={"limit": 500}).json()["items"]
    assert listed
    assert {t["organization_id"] for t in listed} == {acme}

    def their_letter() -> dict[str, Any] | None:
        items = admin.get("/api/dead-letters/", params={"limit": 500}).json()["items"]
        found = [d for d in items if d["task_id"] == their_failure["task_id"]]
        return found[0] if found else None

    deadline = time.monotonic() + 30
    while (letter := their_letter()) is None:
        assert time.monotonic() < deadline, "Globex's dead letter was never archived"
        time.sleep(0.25)
    assert letter["organization_id"] == globex
    our_letters = ours.get("/api/dead-letters/", params={"limit": 500}).json()
    assert {d["organization_id"] for d in our_letters["items"]} <= {acme}
    assert ours.get(f"/api/dead-letters/{letter['id']}").status_code == 404
    assert ours.post(f"/api/dead-letters/{letter['id']}/replay").status_code == 404
    assert all(len(d["body_preview"].encode()) <= 2048 for d in our_letters["items"])
