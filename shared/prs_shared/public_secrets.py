"""Credentials that are public because this repository publishes them: the development values
of `make run`, of earlier compose files and of the tools' own defaults. A deployment running with
one of them is open to anyone who has read the code, so production refuses them at start."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from yarl import URL

PUBLIC_SECRETS = frozenset(
    {
        "guest",  # RabbitMQ's default account
        "admin",  # Grafana's
        "postgres",
        "prs-dev-password",
        "dev-admin-key",
        "dev-admin-key-change-me-in-production",
        "dev-console-secret-change-me-in-production",
        "prs-dev-erlang-cookie-change-me-in-production",
    }
)


def is_public(secret: str | None) -> bool:
    return secret is not None and secret.strip().lower() in PUBLIC_SECRETS


def amqp_password_is_public(url: str) -> bool:
    return is_public(URL(url).password)


def database_password_is_public(url: str) -> bool:
    """Whether a PostgreSQL URL's password is public; SQLite has none."""
    return is_public(make_url(url).password)
