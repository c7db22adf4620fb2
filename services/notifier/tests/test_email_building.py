"""Rendering and building emails: templates, escaping and header injection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from notifier.rendering import Recipient, Renderer, build_email
from prs_shared.messaging.errors import PermanentError
from prs_shared.messaging.notifications import NotificationType

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def context(**data: Any) -> dict[str, Any]:
    return {
        "kind": "x",
        "org_name": "Acme <Receivables>",
        "recipient_name": "Sam",
        "recipient_email": "sam@acme.example.com",
        "deal_id": "D-1",
        "data": data,
        "password_expires_at": None,
        "report_url": None,
    }


def build(kind: NotificationType, recipient: Recipient | None = None, **data: Any) -> Any:
    rendered = Renderer().render(kind, context(**data))
    return build_email(
        rendered,
        mail_from="PRS <no-reply@prs.example.com>",
        recipient=recipient or Recipient("sam@acme.example.com", "Sam"),
        message_id="<m-1@prs.example.com>",
        sent_at=NOW,
        kind=kind,
    )


@pytest.mark.parametrize("kind", list(NotificationType), ids=lambda k: k.value)
def test_every_type_renders_a_subject_a_text_part_and_an_html_part(kind: NotificationType) -> None:
    message = build(kind, client_name="Globex", deal_ids=["D-1"], report_type="deals")
    assert message["Subject"]
    assert message["X-PRS-Notification-Type"] == kind.value
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Hello Sam" in plain
    assert "Hello Sam" in html
    assert "Acme &lt;Receivables&gt;" in html  # escaped in HTML
    assert "Acme <Receivables>" in plain  # and not in text


def test_values_are_escaped_in_html_and_unsafe_links_dropped() -> None:
    message = build(NotificationType.PASSWORD_RESET, reset_url="javascript:alert(1)")
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "javascript:" not in html
    message = build(NotificationType.VERIFICATION_REJECTED, reasons=["<script>x</script>"])
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        (
            NotificationType.VERIFICATION_APPROVED,
            {"client_name": "Globex\r\nBcc: victim@example.com"},
        ),
        (NotificationType.PAYMENT_RECEIVED, {"client_name": "x", "currency": "USD\nX-Evil: 1"}),
        (NotificationType.AUDIT_REPORT_READY, {"report_type": "deals\rBcc: a@example.com"}),
    ],
)
def test_a_request_value_carrying_a_header_injection_is_refused(
    kind: NotificationType, data: dict[str, Any]
) -> None:
    with pytest.raises(PermanentError, match="linefeed or carriage return"):
        build(kind, **data)


def test_a_display_name_carrying_a_header_injection_is_refused() -> None:
    with pytest.raises(PermanentError, match="CR or LF"):
        build(
            NotificationType.PASSWORD_CREATED,
            Recipient("sam@acme.example.com", "Sam\r\nBcc: victim@example.com"),
        )


def test_a_missing_value_renders_a_fallback_not_an_error() -> None:
    message = build(NotificationType.DEAL_OVERDUE)
    assert message["Subject"] == "Deal overdue: D-1"


def test_a_password_expiry_warning_says_in_how_many_days_the_password_expires() -> None:
    message = build(NotificationType.PASSWORD_EXPIRY_WARNING, days_until_expiry=7)
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "expires in 7 days" in plain
    assert "in <strong>7 days</strong>" in html
