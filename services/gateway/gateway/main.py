"""``prs-gateway``: serve the gateway with uvicorn."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvicorn
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import GatewaySettings
from prs_shared.db import single_writer
from prs_shared.logging import configure_logging
from prs_shared.settings import load_settings


def server_config(settings: GatewaySettings, app: FastAPI) -> uvicorn.Config:
    """How uvicorn serves ``app``: address, shutdown grace, and which proxies it believes."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace),
        # uvicorn's own X-Forwarded-For handling: behind a trusted proxy the request's client is
        # the address the proxy saw, so failed authentications are counted per real client.
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
    )


def main() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)
    try:
        # Before uvicorn: a failed lifespan start is logged with its traceback. Held here, the
        # database stays this process's for its lifetime (the host's own claim shares it).
        asyncio.run(single_writer.claim(settings.resolved_database_url()))
    except single_writer.DatabaseInUse as exc:
        logging.getLogger("gateway").error("gateway: %s", exc)
        raise SystemExit(1) from None
    # uvicorn restores the previous handlers after its graceful shutdown and re-raises the signal;
    # with the default handler that kills the process (exit 143) after a clean stop. A no-op
    # handler lets run() return, so SIGTERM ends with exit status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    print(f"gateway listening on http://{settings.host}:{settings.port}", flush=True)
    server = uvicorn.Server(server_config(settings, create_app(settings)))
    server.run()
    if not server.started:
        raise SystemExit(3)  # what uvicorn.run exits with when start-up fails


if __name__ == "__main__":
    main()
