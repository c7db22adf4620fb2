"""``prs-file-processor``: run the file-processor service until SIGTERM."""

from __future__ import annotations

import asyncio

from file_processor.bootstrap import bootstrap
from file_processor.settings import FileProcessorSettings
from prs_shared.logging import configure_logging
from prs_shared.settings import load_settings


def main() -> None:
    settings = load_settings(FileProcessorSettings)
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)
    asyncio.run(bootstrap(settings).run_until_signalled())


if __name__ == "__main__":
    main()
