"""The READMEs' commands, pasted in order into a shell after `make run`, do what they say.

README.md, then cli/README.md, then each service's README: their fenced shell blocks that talk to the running services (those calling `prs` or
`curl`) run as one bash script, from a directory laid out like the repository under `make run`
(`data/` the stack's data directory, `docs/` and `.venv/` the repository's). Only the
development key is swapped for the stack's own; `prs` finds it in `data/` as it does under
`make run`. Every curl fails the script on an HTTP error, so an example that rots fails here.
Blocks that start or test the platform itself (`make run`, `make test`, a second stack, the
benchmarks) are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO, Stack

README = REPO / "README.md"
READMES = (README, REPO / "cli" / "README.md", *sorted(REPO.glob("services/*/README.md")))
FENCED = re.compile(r"^```(?:bash|sh|shell)\n(.*?)^```", re.S | re.M)
# bash: stop at the first failing command; a curl answering 4xx/5xx is a failing command.
PRELUDE = """\
set -euo pipefail
curl() { command curl --fail-with-body --max-time 60 "$@"; echo; }
"""


def service_blocks(text: str) -> list[str]:
    blocks = [m.group(1) for m in FENCED.finditer(text)]
    return [
        b
        for b in blocks
        if ("curl " in b or ".venv/bin/prs " in b) and not re.search(r"\bmake \w", _code(b))
    ]


def _code(block: str) -> str:
    """The block without its comments (which may mention `make run`)."""
    return re.sub(r"(^|\s)#.*$", "", block, flags=re.M)


def test_the_readme_selects_its_service_blocks() -> None:
    blocks = service_blocks(README.read_text())
    assert len(blocks) >= 2, "the README's CLI and curl examples were not found"
    assert any("queue-deal-processing" in b for b in blocks)
    assert any("--action=test" in b for b in blocks)


def test_the_cli_readme_selects_its_examples_and_leaves_its_synopsis() -> None:
    blocks = service_blocks((REPO / "cli" / "README.md").read_text())
    assert any("--task-type=deal_processing --priority=high" in b for b in blocks)
    assert any('tasks show "$TASK"' in b for b in blocks)
    # The synopsis of `prs tasks` / `prs dlq` has placeholders: a ```text block, not run.
    assert not any("TASK_ID" in b or "[--" in b for b in blocks)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_readmes_commands_run_in_order_against_the_services(
    stack: Stack, tmp_path: Path
) -> None:
    stack.wait_ready()
    seeded = stack.prs("seed-demo")
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    script = "\n".join(b for readme in READMES for b in service_blocks(readme.read_text()))
    assert "KEY=dev-admin-key" in script
    script = script.replace("KEY=dev-admin-key", f"KEY={stack.api_key}")

    shell_dir = tmp_path / "checkout"
    shell_dir.mkdir()
    (shell_dir / "data").symlink_to(stack.data_dir)
    (shell_dir / "docs").symlink_to(REPO / "docs")
    (shell_dir / ".venv").symlink_to(REPO / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRS_") and k != "AMQP_URL"}
    env.update(
        {
            "AMQP_URL": stack.env["AMQP_URL"],
            "PRS_GATEWAY_PORT": stack.env["PRS_GATEWAY_PORT"],
            "COLUMNS": "120",
            "NO_COLOR": "1",
        }
    )
    result = subprocess.run(
        ["bash", "-c", PRELUDE + script],
        cwd=shell_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert result.returncode == 0, (
        f"a README command failed (exit {result.returncode}):\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    assert '"status":"QUEUED"' in result.stdout.replace(" ", "")
