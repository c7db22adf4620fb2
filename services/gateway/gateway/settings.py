"""Gateway configuration (``PRS_*`` environment variables)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field, SecretStr, model_validator

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

    @model_validator(mode="after")
    def _refuse_weak_admin_key(self) -> GatewaySettings:
        key = self.admin_api_key.get_secret_value() if self.admin_api_key else None
        if self.environment == "production" and key is not None and len(key) < 24:
            raise ValueError("PRS_ADMIN_API_KEY must be at least 24 characters in production")
        return self
