"""``prs-gateway``: serve the gateway with uvicorn."""

from __future__ import annotations

import signal

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from prs_shared.logging import configure_logging


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)
    # uvicorn restores the previous handlers after its graceful shutdown and re-raises the signal;
    # with the default handler that kills the process (exit 143) after a clean stop. A no-op
    # handler lets run() return, so SIGTERM ends with exit status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    print(f"gateway listening on http://{settings.host}:{settings.port}", flush=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace),
    )


if __name__ == "__main__":
    main()
