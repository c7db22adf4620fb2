"""The gateway's baseline: a FastAPI endpoint with the same pydantic body that does nothing.

Served with the same uvicorn settings as the gateway, so the difference between the two is what
the real endpoint adds: authentication, validation, the durable record and the outbox.
"""

from __future__ import annotations

import os
import uuid

import uvicorn
from fastapi import FastAPI, status

from gateway.api.schemas import QueuedResponse
from gateway.api.schemas_queue import QueueDealProcessing
from prs_shared.messaging.messages import TaskStatus

app = FastAPI()


@app.post("/api/background-tasks/queue-deal-processing/", status_code=status.HTTP_202_ACCEPTED)
async def queue_deal_processing(body: QueueDealProcessing) -> QueuedResponse:
    task_id = uuid.uuid4()
    return QueuedResponse(
        task_id=task_id,
        status=TaskStatus.QUEUED,
        queue="workflow",
        status_url=f"http://noop/api/background-tasks/{task_id}/status/",
    )


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["PRS_GATEWAY_PORT"]),
        log_config=None,
        access_log=False,
    )
