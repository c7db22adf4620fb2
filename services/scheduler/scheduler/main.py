"""``prs-scheduler``: run the scheduler service until SIGTERM."""

from __future__ import annotations

import asyncio

from prs_shared.logging import configure_logging
from prs_shared.settings import load_settings
from scheduler.bootstrap import bootstrap
from scheduler.settings import SchedulerSettings


def main() -> None:
    settings = load_settings(SchedulerSettings)
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)
    asyncio.run(bootstrap(settings).run_until_signalled())


if __name__ == "__main__":
    main()
