"""``prs-notifier``: run the notifier service until SIGTERM."""

from __future__ import annotations

import asyncio

from notifier.bootstrap import bootstrap
from notifier.settings import NotifierSettings
from prs_shared.logging import configure_logging
from prs_shared.settings import load_settings


def main() -> None:
    settings = load_settings(NotifierSettings)
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)
    asyncio.run(bootstrap(settings).run_until_signalled())


if __name__ == "__main__":
    main()
