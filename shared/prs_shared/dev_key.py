"""The development admin key file: how ``prs`` finds the key ``make run`` gave the gateway.

In development the gateway writes the admin key it ensured (``PRS_ADMIN_API_KEY``) into
``<data dir>/dev-admin-key``, readable by its owner only; ``prs`` reads it when no key was given.
Nothing here imports pydantic, so the command stays quick to start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEV_KEY_FILE = "dev-admin-key"
DEFAULT_DATA_DIR = Path("data")


def write_dev_key(data_dir: Path, key: str) -> Path:
    """Write ``key`` to the data directory's key file (mode 0600) and return its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DEV_KEY_FILE
    # Created with the final mode, so the key is never readable by others even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key + "\n")
    path.chmod(0o600)
    return path


def dev_key_path(env: Mapping[str, str]) -> Path:
    """Where the key file of the data directory ``env`` names (``./data`` by default) lives."""
    data_dir = env.get("PRS_DATA_DIR", "").strip()
    return (Path(data_dir) if data_dir else DEFAULT_DATA_DIR) / DEV_KEY_FILE


def read_dev_key(env: Mapping[str, str]) -> str | None:
    """The development key, or ``None`` outside development or when there is no key file."""
    if env.get("PRS_ENVIRONMENT", "development").strip().lower() != "development":
        return None
    try:
        key = dev_key_path(env).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return key or None
