"""Settings every service shares; each service subclasses :class:`ServiceSettings` once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from prs_shared.messaging.failover import split_urls
from prs_shared.messaging.time_limits import TimeLimit, TimeLimits, parse_overrides
from prs_shared.messaging.topology import QueueType, Topology
from prs_shared.public_secrets import amqp_password_is_public, database_password_is_public

Environment = Literal["development", "test", "production"]


class ServiceSettings(BaseSettings):
    """Configuration read from ``PRS_*`` environment variables (plus ``AMQP_URL``).

    Service-specific values (database URL, metrics port) are declared by each service's own
    subclass, so that five services started from one shell never share a database by accident.
    """

    model_config = SettingsConfigDict(
        env_prefix="PRS_", extra="ignore", frozen=True, populate_by_name=True
    )

    environment: Environment = "development"
    amqp_url: str = Field(
        default="amqp://guest:guest@localhost:5672/",
        validation_alias="AMQP_URL",
        description="RabbitMQ connection URL; for a cluster, one URL per node separated by "
        "commas (node 1 first): services connect to the first that answers and move to another "
        "node when theirs goes away.",
    )
    data_dir: Path = Field(default=Path("./data"), description="Embedded databases and files.")
    namespace: str = Field(
        default="",
        description="Prefix for every exchange and queue name; tests use it to isolate runs.",
    )
    queue_type: QueueType = Field(
        default="classic",
        description="classic: queues on one node, with task priorities. quorum: queues "
        "replicated over a cluster's nodes, at-least-once dead-lettering, no priorities on "
        "RabbitMQ 3.10 (docs/adr/0007-quorum-queues.md). An existing queue keeps its type.",
    )
    prefetch: int = Field(default=64, ge=1, le=10_000, description="Unacked deliveries per queue.")
    max_retries: int = Field(default=3, ge=0, le=50, description="Retries after the first try.")
    retry_base_delay: float = Field(default=1.0, gt=0, description="First retry delay, seconds.")
    retry_max_delay: float = Field(default=300.0, gt=0, description="Longest retry delay, seconds.")
    crash_limit: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="A message that came back unsettled (its worker died holding it) more often "
        "than this is dead-lettered with reason crash_loop instead of run again.",
    )
    database_outage_seconds: float = Field(
        default=600.0,
        ge=0,
        description="A message whose handling finds the service's database unreachable, "
        "restarting or out of connections is tried again later without spending a retry, for "
        "this long at most; then it is dead-lettered with reason database_unavailable.",
    )
    shutdown_grace: float = Field(
        default=25.0, ge=0, description="Seconds in-flight work may take to finish on SIGTERM."
    )
    started_announce_delay: float = Field(
        default=0.25,
        ge=0,
        description="A task still running after this many seconds is announced STARTED.",
    )
    batch_size: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Deliveries handled together in one database transaction. 1 handles each on "
        "its own, many at once. More suits handlers that are quick database work; handlers with "
        "slow external I/O (SMTP, HTTP) should keep 1, because a batch runs its handlers one "
        "after another in one transaction. Keep prefetch at least twice this.",
    )
    batch_wait: float = Field(
        default=0.002,
        ge=0,
        le=1.0,
        description="Longest a batch waits for more deliveries once one is ready; a tenth of it "
        "without a new delivery ends the wait early.",
    )
    heartbeat_interval: float = Field(default=10.0, gt=0, description="Seconds between heartbeats.")
    soft_time_limit_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Soft time limit of a handler whose type declares none: the handler's cue "
        "to stop cleanly (docs/adr/0009-time-limits-and-recycling.md). 0: none.",
    )
    hard_time_limit_seconds: float = Field(
        default=90.0,
        ge=0,
        description="Hard time limit of a handler whose type declares none: it is cancelled and "
        "the task retried, then failed, with reason time_limit. 0: none.",
    )
    time_limits: dict[str, Any] = Field(
        default_factory=dict,
        description='Per message type [soft, hard] seconds, as JSON: {"file.process": [60, 90]}; '
        "over the type's declared limits and the two defaults.",
    )
    max_tasks_per_worker: int = Field(
        default=0,
        ge=0,
        description="A worker process restarts itself in place (same PID) after settling this "
        "many deliveries, like Celery's max_tasks_per_child (the seed's 1000). 0: never; the "
        "memory limit is the default guard (docs/adr/0009).",
    )
    max_memory_mb: int = Field(
        default=1024,
        ge=0,
        description="A worker process whose resident memory passes this many MB after a task "
        "restarts itself in place. 0: never.",
    )
    file_store_dir: Path | None = Field(
        default=None,
        description="Root of the shared file store (invoices, reports, processed files); "
        "<data dir>/files when unset.",
    )
    log_level: str = "INFO"
    log_json: bool | None = Field(
        default=None,
        description="JSON log lines (true), human ones (false); unset: human on a terminal.",
    )

    service_name: ClassVar[str] = "service"
    database_url: str | None = None
    db_pool_size: int = Field(
        default=10,
        ge=1,
        le=500,
        description="PostgreSQL connections a process keeps open for its own database. Every "
        "replica holds this many, and up to PRS_DB_POOL_OVERFLOW more at a peak: their sum over "
        "all processes must stay under the server's max_connections (docs/deploy.md).",
    )
    db_pool_overflow: int = Field(
        default=10,
        ge=0,
        le=500,
        description="Connections a process may open beyond PRS_DB_POOL_SIZE at a peak, closed "
        "again when returned.",
    )
    metrics_port: int = 0
    metrics_host: str = Field(
        default="127.0.0.1", description="Interface of the metrics endpoint (0.0.0.0 in compose)."
    )

    @field_validator("time_limits", mode="after")
    @classmethod
    def _known_types_and_sane_limits(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            parse_overrides(value)
        except ValueError as exc:
            raise ValueError(f"PRS_TIME_LIMITS: {exc}") from None
        return value

    @model_validator(mode="after")
    def _soft_before_hard(self) -> ServiceSettings:
        try:
            TimeLimit(self.soft_time_limit_seconds, self.hard_time_limit_seconds)
        except ValueError as exc:
            raise ValueError(
                f"PRS_SOFT_TIME_LIMIT_SECONDS / PRS_HARD_TIME_LIMIT_SECONDS: {exc}"
            ) from None
        return self

    def resolved_time_limits(self) -> TimeLimits:
        """Every message type's limits: PRS_TIME_LIMITS, else the catalog's, else the defaults."""
        return TimeLimits(
            TimeLimit(self.soft_time_limit_seconds, self.hard_time_limit_seconds),
            parse_overrides(self.time_limits),
        )

    @model_validator(mode="after")
    def _at_least_one_broker(self) -> ServiceSettings:
        split_urls(self.amqp_url)  # ValueError names AMQP_URL
        return self

    @model_validator(mode="after")
    def _database_url_parses(self) -> ServiceSettings:
        try:
            make_url(self.resolved_database_url())
        except ArgumentError:
            raise ValueError(
                f"{self._database_variable()}: not a database URL (e.g. "
                "postgresql+asyncpg://user:password@host:5432/name)"
            ) from None
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> ServiceSettings:
        if self.environment != "production":
            return self
        if "guest:guest@" in self.amqp_url:
            raise ValueError("AMQP_URL uses the guest account; set real credentials in production")
        if any(amqp_password_is_public(url) for url in split_urls(self.amqp_url)):
            raise ValueError(
                "AMQP_URL's password is one published with PRS Tasks; set your own in "
                "production (deploy/new-env makes random ones)"
            )
        if database_password_is_public(self.resolved_database_url()):
            raise ValueError(
                f"{self._database_variable()}: its password is one published with PRS Tasks; "
                "set your own in production (deploy/new-env makes random ones)"
            )
        return self

    def _database_variable(self) -> str:
        """The environment variable this service reads its database URL from."""
        alias = type(self).model_fields["database_url"].validation_alias
        if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
            alias = alias.choices[0]
        return alias if isinstance(alias, str) else "PRS_DATABASE_URL"

    def topology(self) -> Topology:
        """The broker's names and queue arguments, as every process of the deployment declares
        them (a queue declared with other arguments is refused by the broker)."""
        return Topology(
            namespace=self.namespace,
            queue_type=self.queue_type,
            # One delivery more than the runtime's own crash guard allows (see Topology).
            delivery_limit=self.crash_limit + 1,
        )

    def resolved_file_store_dir(self) -> Path:
        return (self.file_store_dir or self.data_dir / "files").resolve()

    def resolved_database_url(self) -> str:
        """The configured URL, or an embedded SQLite file under the data directory."""
        if self.database_url:
            return self.database_url
        path = (self.data_dir / f"{self.service_name}.sqlite3").resolve()
        return f"sqlite+aiosqlite:///{path}"


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S]) -> S:
    """The service's settings from its environment; a bad value ends the start with one line per
    problem, naming the variable where pydantic knows it, instead of a traceback."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            if where in cls.model_fields:  # a field read under its prefixed name, no alias
                where = f"{prefix}{where}".upper()
            print(
                f"{cls.service_name}: invalid configuration: {where + ': ' if where else ''}"
                f"{error['msg']}",
                file=sys.stderr,
            )
        raise SystemExit(2) from None
