"""Issue "notifier" done-when: with the services as `make run` starts them, send-notification
through the gateway and a deal event produce the right email in the outbox, the gateway's
notification log shows them, and a webhook registered through the gateway gets a signed delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from .conftest import Stack
from .test_deal_journey import emails_to, text_of, verify_when_replicated, wait_for


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Receiver.received.append((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_emails_log_and_signed_webhooks_through_the_running_services(stack: Stack) -> None:
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.received = []
    try:
        stack.wait_ready()
        stack.prs_json("manage-background-tasks", "--action=test")  # every events queue bound
        seeded = stack.prs_json("seed-demo")
        deal_id = seeded["scenarios"]["valid"][0]
        org = deal_id.rsplit("-deal-", 1)[0]
        secret = secrets.token_hex(24)
        with stack.http() as http:
            hook = http.post(
                "/api/webhooks/",
                json={
                    "url": f"http://127.0.0.1:{server.server_port}/prs",
                    "event_types": ["deal.verified"],
                    "secret": secret,
                    "organization_id": org,
                },
            )
            assert hook.status_code == 202, hook.text

            def reset_mail_sent() -> bool:
                r = http.post(
                    "/api/background-tasks/send-notification/",
                    json={
                        "notification_type": "password_reset",
                        "recipient_type": "user",
                        "user_id": f"{org}-admin",
                        "organization_id": org,
                        "additional_data": {"reset_url": "https://prs.example/reset/abc"},
                    },
                )
                assert r.status_code == 202, r.text
                for _ in range(60):
                    status = http.get(r.json()["status_url"]).json()
                    if status["status"] in ("SUCCEEDED", "FAILED", "DEAD_LETTERED"):
                        return bool(status["status"] == "SUCCEEDED")
                    time.sleep(0.5)
                return False

            # The user directory fills from the seeded events; until then the user is unknown.
            wait_for("password reset sent", reset_mail_sent, stack, timeout=60)
            outbox = stack.data_dir / "outbox"
            [reset] = emails_to(outbox, f"admin@{org}.example")
            assert "reset" in reset["Subject"].lower()
            assert "https://prs.example/reset/abc" in text_of(reset)

            verify_when_replicated(stack, deal_id)
            approved = wait_for(
                "verification email",
                lambda: emails_to(outbox, f"salesperson@{org}.example"),
                stack,
            )
            assert deal_id in text_of(approved[0])

            # The email is in the outbox before the notifier's notification.sent reaches the
            # gateway's log; other notifications (a seeded payment's) may be logged first.
            wanted = {"password_reset", "verification_approved"}

            def logged() -> list[dict[str, Any]] | None:
                entries: list[dict[str, Any]] = http.get("/api/notifications/").json()["items"]
                return entries if wanted <= {e["notification_type"] for e in entries} else None

            log = wait_for("notification log entries", logged, stack)
            assert all(e["status"] == "sent" for e in log)

            # The registration as the notifier answered it, listed for its organization.
            hooks = http.get("/api/webhooks/", params={"organization_id": org}).json()["items"]
            assert [h["url"] for h in hooks] == [f"http://127.0.0.1:{server.server_port}/prs"]
            assert hooks[0]["event_types"] == ["deal.verified"]
            assert hooks[0]["endpoint_id"]
            assert "secret" not in hooks[0]

        headers, body = wait_for(
            "signed webhook delivery", lambda: Receiver.received[:1], stack, timeout=30
        )[0]
        payload = json.loads(body)
        assert deal_id in json.dumps(payload)
        timestamp = headers["X-PRS-Timestamp"]
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        assert headers["X-PRS-Signature"] == f"v1={expected.hexdigest()}"
    finally:
        server.shutdown()
