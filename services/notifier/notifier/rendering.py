"""Turning a notification into an email: one Jinja2 template per type, text and HTML parts.

Each ``templates/<type>.jinja`` defines three blocks — ``subject``, ``text`` and ``html``. The
subject and text are rendered without HTML escaping and the HTML part with it (two environments
over the same files), then wrapped in the shared layouts. Values from events and requests are
data, never template source.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template, TemplateError
from markupsafe import Markup

from prs_shared.messaging.errors import PermanentError
from prs_shared.messaging.notifications import NotificationType

MESSAGE_ID_NAMESPACE = uuid.UUID("0b8f3f8e-52f4-4c43-9a43-6f1d3c1a7e21")


@dataclass(frozen=True)
class Recipient:
    address: str
    name: str | None = None
    user_id: str | None = None


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def money(value: Any) -> str:
    """``1234.5`` → ``1,234.50`` (half-up, two places); anything else is shown as given."""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return str(value)
    return f"{amount:,.2f}"


def day(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    try:
        return day(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return text


def safe_link(value: Any) -> str | None:
    """Only http(s) links make it into an email; anything else (``javascript:``…) is dropped."""
    text = str(value or "").strip()
    return text if text.lower().startswith(("https://", "http://")) else None


def _environment(*, autoescape: bool) -> Environment:
    # The plain environment renders only the subject and the text/plain part, never HTML.
    env = Environment(
        loader=PackageLoader("notifier", "templates"),
        autoescape=autoescape,  # noqa: S701
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["money"] = money
    env.filters["day"] = day
    env.filters["safe_link"] = safe_link
    return env


class Renderer:
    """Renders every :class:`NotificationType` from the package's templates."""

    def __init__(self) -> None:
        self._plain = _environment(autoescape=False)
        self._html = _environment(autoescape=True)
        # Fail at start-up, not on the first email, when a template is missing or broken.
        for kind in NotificationType:
            for env in (self._plain, self._html):
                template = env.get_template(f"{kind.value}.jinja")
                missing = {"subject", "text", "html"} - set(template.blocks)
                if missing:
                    raise RuntimeError(f"template {kind.value}.jinja lacks blocks {missing}")

    def render(self, kind: NotificationType, context: dict[str, Any]) -> RenderedEmail:
        try:
            plain = self._plain.get_template(f"{kind.value}.jinja")
            html = self._html.get_template(f"{kind.value}.jinja")
            subject = _block(plain, "subject", context).strip()
            text_body = _block(plain, "text", context).strip()
            html_body = _block(html, "html", context).strip()
            text = self._plain.get_template("_layout.txt.jinja").render(
                {**context, "body": text_body}
            )
            page = self._html.get_template("_layout.html.jinja").render(
                {**context, "body": Markup(html_body), "subject": subject}  # noqa: S704
            )
        except TemplateError as exc:
            # A template that cannot render this request will not render it on a retry either.
            raise PermanentError(f"cannot render {kind.value}: {exc}") from exc
        return RenderedEmail(subject=subject, text=text.strip() + "\n", html=page)


def _block(template: Template, name: str, context: dict[str, Any]) -> str:
    return "".join(template.blocks[name](template.new_context(dict(context))))


def mail_id(source_message_id: str, recipient: str) -> str:
    """The id of one email: the same request to the same address always gets the same id."""
    return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{source_message_id}/{recipient.lower()}"))


def message_id_header(mail: str, mail_from: str) -> str:
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "prs.localhost"
    return f"<{mail}@{domain}>"


def build_email(
    rendered: RenderedEmail,
    *,
    mail_from: str,
    recipient: Recipient,
    message_id: str,
    sent_at: datetime,
    kind: NotificationType,
) -> EmailMessage:
    """A multipart/alternative message (text, then HTML).

    The default policy refuses CR and LF in header values, so a name or subject carrying a
    header injection attempt raises here; that is permanent, the same input fails every time.
    """
    message = EmailMessage()
    try:
        message["Subject"] = rendered.subject
        message["From"] = mail_from
        message["To"] = Address(display_name=recipient.name or "", addr_spec=recipient.address)
        message["Message-ID"] = message_id
        message["Date"] = format_datetime(sent_at)
        message["Auto-Submitted"] = "auto-generated"
        message["X-PRS-Notification-Type"] = kind.value
    except (ValueError, TypeError, MessageError) as exc:
        raise PermanentError(f"refused to build the {kind.value} email headers: {exc}") from exc
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    # Chosen here, once: otherwise every flattening (each try of a retried send) picks a new one.
    message.set_boundary(f"=_prs_{uuid.uuid4().hex}")
    return message
