"""Where the gateway is and which key to present, from flags or the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from prs_cli.errors import UsageError
from prs_shared.dev_key import read_dev_key

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Config:
    """Global options shared by every subcommand."""

    gateway_url: str
    api_key: str | None
    json_output: bool = False


def resolve_gateway_url(explicit: str | None, env: Mapping[str, str] | None = None) -> str:
    """The gateway's base URL.

    ``--gateway-url`` / ``PRS_GATEWAY_URL`` wins; otherwise ``PRS_GATEWAY_PORT`` (the variable
    ``make run`` starts the gateway with) on the loopback interface; otherwise the default.
    """
    env = os.environ if env is None else env
    if explicit:
        parts = urlsplit(explicit)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(
                f"must look like http://HOST:PORT, not {explicit!r}", param="--gateway-url"
            )
        return explicit.rstrip("/")
    port = env.get("PRS_GATEWAY_PORT", "").strip()
    if port:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"must be a port number, not {port!r}", param="PRS_GATEWAY_PORT")
        return f"http://127.0.0.1:{int(port)}"
    return DEFAULT_GATEWAY_URL


def resolve_api_key(explicit: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The API key: ``--api-key`` / ``PRS_API_KEY`` / ``PRS_ADMIN_API_KEY``, else, in development
    only, the key the gateway wrote into ``$PRS_DATA_DIR/dev-admin-key`` (``./data`` by default,
    where ``make run`` keeps it)."""
    if explicit:
        return explicit
    return read_dev_key(os.environ if env is None else env)
