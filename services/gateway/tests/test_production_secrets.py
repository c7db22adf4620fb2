"""In production a service refuses, at start, every credential this repository publishes (the
development values of `make run` and of earlier compose files): with one of them the deployment
is open to anyone who has read the code. Development keeps accepting them."""

from __future__ import annotations

import secrets

import pytest

from gateway.settings import GatewaySettings
from prs_shared.settings import load_settings

OWN = secrets.token_hex(24)
GOOD = {
    "PRS_ENVIRONMENT": "production",
    "AMQP_URL": f"amqp://prs:{OWN}@rabbitmq:5672/",
    "PRS_GATEWAY_DATABASE_URL": f"postgresql+asyncpg://prs:{OWN}@postgres:5432/prs_gateway",
    "PRS_ADMIN_API_KEY": secrets.token_hex(32),
    "PRS_CONSOLE_SECRET": secrets.token_hex(32),
}


def _start(monkeypatch: pytest.MonkeyPatch, **env: str) -> GatewaySettings:
    for name, value in {**GOOD, **env}.items():
        monkeypatch.setenv(name, value)
    return load_settings(GatewaySettings)


def test_own_credentials_start(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _start(monkeypatch)
    assert settings.environment == "production"


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("AMQP_URL", "amqp://prs:prs-dev-password@rabbitmq:5672/", "AMQP_URL's password"),
        (
            "AMQP_URL",
            f"amqp://prs:{OWN}@rabbit-1:5672/,amqp://prs:prs-dev-password@rabbit-2:5672/",
            "AMQP_URL's password",
        ),
        ("AMQP_URL", "amqp://guest:guest@rabbitmq:5672/", "AMQP_URL uses the guest account"),
        (
            "PRS_GATEWAY_DATABASE_URL",
            "postgresql+asyncpg://prs:prs-dev-password@postgres:5432/prs_gateway",
            "PRS_GATEWAY_DATABASE_URL: its password",
        ),
        ("PRS_ADMIN_API_KEY", "dev-admin-key-change-me-in-production", "PRS_ADMIN_API_KEY is a"),
        ("PRS_ADMIN_API_KEY", "short-key", "PRS_ADMIN_API_KEY must be at least 24"),
        (
            "PRS_CONSOLE_SECRET",
            "dev-console-secret-change-me-in-production",
            "PRS_CONSOLE_SECRET is a",
        ),
        ("PRS_CONSOLE_SECRET", "0123456789", "PRS_CONSOLE_SECRET must be at least 24"),
    ],
    ids=[
        "broker-password",
        "one-node-of-several",
        "guest",
        "database-password",
        "admin-key",
        "short-admin-key",
        "console-secret",
        "short-console-secret",
    ],
)
def test_a_published_or_weak_credential_stops_the_start_naming_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    said: str,
) -> None:
    with pytest.raises(SystemExit) as exited:
        _start(monkeypatch, **{variable: value})
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert said in err, err
    assert "Traceback" not in err
    # The refusal names the variable, never the secret it holds.
    assert value not in err, err


def test_development_accepts_the_development_values(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _start(
        monkeypatch,
        PRS_ENVIRONMENT="development",
        AMQP_URL="amqp://guest:guest@localhost:5672/",
        PRS_ADMIN_API_KEY="dev-admin-key",
        PRS_CONSOLE_SECRET="dev-console-secret-change-me-in-production",
    )
    assert settings.admin_api_key is not None
    assert settings.admin_api_key.get_secret_value() == "dev-admin-key"


def test_a_database_url_that_does_not_parse_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _start(monkeypatch, PRS_GATEWAY_DATABASE_URL="not a url")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "PRS_GATEWAY_DATABASE_URL: not a database URL" in err, err
    assert "Traceback" not in err
