"""A scheduler process whose clock is a file the test writes, so that the test can kill -9 it.

Run as ``python clocked_scheduler.py CLOCK_FILE`` with the scheduler's usual environment
(``AMQP_URL``, ``PRS_DATABASE_URL``, ...). The file holds the time as POSIX seconds; the test
replaces it atomically, so every reading is a whole number the test wrote.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from prs_shared.logging import configure_logging
from scheduler.bootstrap import bootstrap
from scheduler.settings import SchedulerSettings


class FileClock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        return datetime.fromtimestamp(float(self.path.read_text()), UTC)


def main() -> None:
    settings = SchedulerSettings()
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)
    host = bootstrap(settings, clock=FileClock(Path(sys.argv[1])))
    asyncio.run(host.run_until_signalled())


if __name__ == "__main__":
    main()
