"""Gateway configuration (``PRS_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator

from prs_shared.db.engine import is_sqlite
from prs_shared.public_secrets import is_public
from prs_shared.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: ClassVar[str] = "gateway"
    host: str = Field(default="127.0.0.1", validation_alias="PRS_GATEWAY_HOST")
    port: int = Field(default=8000, ge=1, le=65535, validation_alias="PRS_GATEWAY_PORT")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("PRS_GATEWAY_DATABASE_URL")
    )
    admin_api_key: SecretStr | None = Field(
        default=None,
        validation_alias="PRS_ADMIN_API_KEY",
        description="When set, an admin key with this value exists after start-up.",
    )
    result_retention_seconds: int = Field(
        default=3600,
        ge=1,
        validation_alias="PRS_RESULT_RETENTION_SECONDS",
        description="How long a finished task keeps its result before it reads as EXPIRED.",
    )
    retention_failed_days: float = Field(
        default=30,
        gt=0,
        validation_alias="PRS_RETENTION_FAILED_DAYS",
        description="FAILED and DEAD_LETTERED tasks, and archived dead letters, older than this "
        "are deleted by the hourly failed-task cleanup.",
    )
    retention_tasks_days: float = Field(
        default=30,
        gt=0,
        validation_alias="PRS_RETENTION_TASKS_DAYS",
        description="SUCCEEDED and CANCELLED tasks older than this are deleted by the hourly "
        "system cleanup.",
    )
    retention_idempotency_hours: float = Field(
        default=24,
        gt=0,
        validation_alias="PRS_RETENTION_IDEMPOTENCY_HOURS",
        description="How long an Idempotency-Key is remembered.",
    )
    retention_notifications_days: float = Field(
        default=90,
        gt=0,
        validation_alias="PRS_RETENTION_NOTIFICATIONS_DAYS",
        description="Notification-log rows older than this are deleted.",
    )
    retention_reports_days: float = Field(
        default=90,
        gt=0,
        validation_alias="PRS_RETENTION_REPORTS_DAYS",
        description="Audit reports older than this are deleted, with their files.",
    )
    retention_heartbeats_days: float = Field(
        default=7,
        gt=0,
        validation_alias="PRS_RETENTION_HEARTBEATS_DAYS",
        description="Heartbeat rows of workers silent for longer than this are deleted.",
    )
    retention_health_days: float = Field(
        default=30,
        gt=0,
        validation_alias="PRS_RETENTION_HEALTH_DAYS",
        description="Health snapshots (one per health_monitoring run) older than this are "
        "deleted by the hourly system cleanup.",
    )
    cleanup_batch_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        validation_alias="PRS_CLEANUP_BATCH_SIZE",
        description="Rows one cleanup statement deletes at most.",
    )
    cleanup_max_batches: int = Field(
        default=20,
        ge=1,
        le=10_000,
        validation_alias="PRS_CLEANUP_MAX_BATCHES",
        description="Statements per kind of row and per cleanup run; what is left waits for the "
        "next run.",
    )

    upload_dir: Path | None = Field(
        default=None,
        validation_alias="PRS_UPLOAD_DIR",
        description="Where uploads land, and the only place the JSON file_path form may point "
        "into; <data dir>/uploads when unset.",
    )
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1, validation_alias="PRS_MAX_UPLOAD_BYTES"
    )
    rate_limit_per_minute: float = Field(
        default=600,
        gt=0,
        validation_alias="PRS_RATE_LIMIT_PER_MINUTE",
        description="Queuing requests per API key per minute (token bucket refill rate).",
    )
    rate_limit_burst: int = Field(default=100, ge=1, validation_alias="PRS_RATE_LIMIT_BURST")
    auth_failure_limit_per_minute: float = Field(
        default=10,
        gt=0,
        validation_alias="PRS_AUTH_FAILURE_LIMIT_PER_MINUTE",
        description="Failed authentications allowed per client address per minute, after the "
        "burst (token bucket refill rate); beyond, 429 with Retry-After.",
    )
    auth_failure_burst: int = Field(default=20, ge=1, validation_alias="PRS_AUTH_FAILURE_BURST")
    limits_store: Literal["auto", "process", "database"] = Field(
        default="auto",
        validation_alias="PRS_LIMITS_STORE",
        description="Where the queuing and failed-auth token buckets live: 'database' (shared "
        "by every gateway replica; PostgreSQL only), 'process' (each replica its own), 'auto' "
        "(database on PostgreSQL, process on SQLite, which serves one replica).",
    )
    trusted_proxies: str = Field(
        default="127.0.0.1",
        min_length=1,
        validation_alias="PRS_TRUSTED_PROXIES",
        description="Comma-separated addresses or networks (CIDR) of the reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto the gateway believes; a request from any other "
        "peer is its own client (the address failed authentications are counted by). '*' "
        "trusts every peer: only when nothing but the proxy can reach the gateway.",
    )
    max_json_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        validation_alias="PRS_MAX_JSON_BYTES",
        description="Request bodies other than multipart uploads (JSON) larger than this are "
        "refused with 413 before they are read.",
    )
    heartbeat_stale_seconds: float = Field(
        default=60,
        gt=0,
        validation_alias="PRS_HEARTBEAT_STALE_SECONDS",
        description="A service whose last heartbeat is older than this is reported down.",
    )
    stalled_queued_after_seconds: float = Field(
        default=600,
        gt=0,
        validation_alias="PRS_STALLED_QUEUED_AFTER_SECONDS",
        description="Task monitoring flags a task QUEUED for longer than this while its queue "
        "has no consumer (reason no_consumer).",
    )
    stalled_after_seconds: float = Field(
        default=3600,
        gt=0,
        validation_alias="PRS_STALLED_AFTER_SECONDS",
        description="Task monitoring flags a task STARTED for longer than twice its type's hard "
        "time limit (reason time_limit); this, for a type without a hard limit.",
    )
    stalled_requeue_limit: int = Field(
        default=2,
        ge=0,
        le=100,
        validation_alias="PRS_STALLED_REQUEUE_LIMIT",
        description="Automatic requeues of one task whose worker stopped sending heartbeats "
        "(reason dead_worker); past it the task stays flagged for an operator.",
    )
    console_secret: SecretStr | None = Field(
        default=None,
        validation_alias="PRS_CONSOLE_SECRET",
        description="Signs console session cookies; random at each start when unset (sessions "
        "then end with the process; set it when several gateway processes serve the console).",
    )
    console_session_seconds: int = Field(
        default=8 * 3600,
        ge=60,
        validation_alias="PRS_CONSOLE_SESSION_SECONDS",
        description="How long a console login lasts.",
    )
    smtp_host: str | None = Field(
        default=None,
        validation_alias="PRS_SMTP_HOST",
        description="The SMTP server the health check probes (the notifier's); unset: the "
        "notifier writes email to its file outbox and there is nothing to probe.",
    )
    smtp_port: int = Field(default=25, validation_alias="PRS_SMTP_PORT")
    clamd_url: str | None = Field(
        default=None,
        validation_alias="PRS_CLAMD_URL",
        description="The file-processor's clamd (unix:///path or tcp://host:port), which the "
        "health check pings; unset: no ClamAV check.",
    )

    def resolved_upload_dir(self) -> Path:
        return (self.upload_dir or self.data_dir / "uploads").resolve()

    @model_validator(mode="after")
    def _limits_store_needs_postgresql(self) -> GatewaySettings:
        if self.limits_store == "database" and is_sqlite(self.resolved_database_url()):
            raise ValueError(
                "PRS_LIMITS_STORE=database needs PostgreSQL (PRS_GATEWAY_DATABASE_URL); on "
                "SQLite the gateway has one replica and keeps its limits in the process"
            )
        return self

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> GatewaySettings:
        if self.environment != "production":
            return self
        for name, value in (
            ("PRS_ADMIN_API_KEY", self.admin_api_key),
            ("PRS_CONSOLE_SECRET", self.console_secret),
        ):
            secret = value.get_secret_value() if value else None
            if secret is None:
                continue
            if is_public(secret):
                raise ValueError(
                    f"{name} is a value published with PRS Tasks; set your own in production "
                    "(deploy/new-env makes random ones)"
                )
            if len(secret) < 24:
                raise ValueError(f"{name} must be at least 24 characters in production")
        return self
