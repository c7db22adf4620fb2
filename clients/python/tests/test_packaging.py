"""prs-client stands on its own: it needs nothing of the platform's packages."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import requires

from .conftest import REPO

CLIENT_DIR = REPO / "clients" / "python"
WORKSPACE = ("prs-shared", "prs-gateway", "prs-deal-workflow", "prs-file-processor")
WORKSPACE += ("prs-notifier", "prs-scheduler", "prs-cli", "prs-tasks")
PLATFORM_MODULES = ("prs_shared", "gateway", "deal_workflow", "file_processor", "notifier")
PLATFORM_MODULES += ("scheduler", "prs_cli")


def test_the_installed_distribution_requires_nothing_of_the_workspace() -> None:
    names = {
        re.split(r"[\s\[<>=;!~]", r, maxsplit=1)[0].lower() for r in requires("prs-client") or []
    }
    assert names, "prs-client declares no requirements at all"
    assert names.isdisjoint(WORKSPACE), names
    assert {"httpx", "pydantic", "tenacity"} <= names


def test_aio_pika_and_sqlalchemy_are_only_in_extras() -> None:
    project = tomllib.loads((CLIENT_DIR / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith(("aio-pika", "sqlalchemy")) for d in project["dependencies"])
    assert any(d.startswith("aio-pika") for d in project["optional-dependencies"]["events"])


def test_no_module_of_the_client_imports_the_platform() -> None:
    pattern = re.compile(rf"^\s*(from|import)\s+({'|'.join(PLATFORM_MODULES)})\b", re.M)
    offenders = [
        str(path.relative_to(CLIENT_DIR))
        for path in [
            *(CLIENT_DIR / "prs_client").rglob("*.py"),
            *(CLIENT_DIR / "examples").rglob("*.py"),
        ]
        if pattern.search(path.read_text())
    ]
    assert offenders == []
