"""``python -m prs_shared.testing.worker``: a probe service process for kill and signal tests."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from prs_shared.logging import configure_logging
from prs_shared.service import ServiceHost
from prs_shared.settings import ServiceSettings
from prs_shared.testing.probe import MIGRATIONS, probe_registry


class ProbeSettings(ServiceSettings):
    service_name: ClassVar[str] = "probe"


def main() -> None:
    settings = ProbeSettings()
    configure_logging("probe", settings.log_level, json=False)
    host = ServiceHost(
        settings, handlers=probe_registry(), command_queues=("workflow",), migrations=MIGRATIONS
    )
    asyncio.run(host.run_until_signalled())


if __name__ == "__main__":
    main()
