"""``prs-deal-workflow``: run the deal-workflow service until SIGTERM."""

from __future__ import annotations

import asyncio

from deal_workflow.bootstrap import bootstrap
from deal_workflow.settings import DealWorkflowSettings
from prs_shared.logging import configure_logging
from prs_shared.settings import load_settings


def main() -> None:
    settings = load_settings(DealWorkflowSettings)
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)
    asyncio.run(bootstrap(settings).run_until_signalled())


if __name__ == "__main__":
    main()
