"""Notifier configuration (``PRS_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import EmailStr, Field, SecretStr, TypeAdapter, ValidationError, model_validator
from sqlalchemy.engine import make_url

from prs_shared.db.engine import is_sqlite
from prs_shared.settings import ServiceSettings

_ADDRESS: TypeAdapter[str] = TypeAdapter(EmailStr)


class NotifierSettings(ServiceSettings):
    service_name: ClassVar[str] = "notifier"
    database_url: str | None = Field(default=None, validation_alias="PRS_NOTIFIER_DATABASE_URL")
    metrics_port: int = Field(
        default=9103, ge=0, le=65535, validation_alias="PRS_NOTIFIER_METRICS_PORT"
    )

    public_gateway_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of the gateway as recipients reach it; links in emails start here.",
    )

    # --- email ---------------------------------------------------------------------------------
    email_backend: Literal["file", "smtp"] = Field(
        default="file",
        validation_alias="PRS_NOTIFIER_EMAIL_BACKEND",
        description="file: one .eml per message under <data dir>/outbox; smtp: a real server.",
    )
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(default=False, description="Upgrade with STARTTLS (port 587).")
    smtp_tls: bool = Field(default=False, description="Implicit TLS from the start (port 465).")
    smtp_timeout: float = Field(default=10.0, gt=0, description="Seconds per SMTP operation.")
    smtp_pool_size: int = Field(default=4, ge=1, le=100, description="Reused SMTP connections.")
    smtp_retry_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Tries of one email inside one delivery before the platform's retry path.",
    )
    smtp_retry_window: float = Field(
        default=15.0, gt=0, description="Seconds the in-delivery retries may take in all."
    )
    mail_from: str = Field(default="PRS <no-reply@prs.localhost>", description="From header.")
    operator_emails: str = Field(
        default="",
        validation_alias="PRS_OPERATOR_EMAILS",
        description="Comma-separated addresses of the platform's operators (the admins of no "
        "organization): they get the system's incident and recovery emails.",
    )

    # --- webhooks ------------------------------------------------------------------------------
    webhook_allow_private: bool = Field(
        default=False,
        description="Admit endpoints on loopback, private and link-local addresses, and plain "
        "http (local development and tests only).",
    )
    webhook_timeout: float = Field(default=10.0, gt=0, description="Seconds per delivery.")
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_retry_base_delay: float = Field(default=5.0, gt=0)
    webhook_retry_max_delay: float = Field(default=3600.0, gt=0)
    webhook_poll_interval: float = Field(default=1.0, gt=0)

    def operator_addresses(self) -> list[str]:
        """``PRS_OPERATOR_EMAILS`` as a list, each address once."""
        found = (a.strip() for a in self.operator_emails.split(","))
        return list(dict.fromkeys(a for a in found if a))

    @model_validator(mode="after")
    def _operator_emails_are_addresses(self) -> NotifierSettings:
        for address in self.operator_addresses():
            try:
                _ADDRESS.validate_python(address)
            except ValidationError as exc:
                raise ValueError(f"PRS_OPERATOR_EMAILS: {address!r} is not an address") from exc
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_mail(self) -> NotifierSettings:
        if self.smtp_tls and self.smtp_starttls:
            raise ValueError("PRS_SMTP_TLS and PRS_SMTP_STARTTLS exclude each other")
        if self.environment == "production":
            if (
                self.email_backend == "smtp"
                and self.smtp_username
                and not (self.smtp_tls or self.smtp_starttls)
            ):
                raise ValueError("SMTP credentials would travel in clear text; enable TLS")
            if self.webhook_allow_private:
                raise ValueError("PRS_WEBHOOK_ALLOW_PRIVATE is for development only")
        return self

    def outbox_dir(self) -> Path:
        return (self.data_dir / "outbox").resolve()

    def ledger_database_url(self) -> str:
        """Where the sent-mail ledger commits on its own, apart from a message's transaction.

        PostgreSQL: the service database itself. SQLite: a sibling file, because a handler's
        transaction holds the database's only write lock for as long as the handler runs.
        """
        url = self.resolved_database_url()
        if not is_sqlite(url):
            return url
        parsed = make_url(url)
        path = Path(parsed.database or "notifier.sqlite3")
        ledger = path.with_name(f"{path.stem}-ledger{path.suffix or '.sqlite3'}")
        return parsed.set(database=str(ledger)).render_as_string(hide_password=False)
