"""Request bodies are bounded before they are read.

Starlette and FastAPI read a whole body into memory before parsing or validating it, so without a
bound a 100 MB JSON body is buffered and parsed before the 422 that refuses it. This ASGI
middleware refuses a body whose ``Content-Length`` is over the limit before the application runs,
and counts the bytes of a body sent without one (chunked) as the application reads it, stopping
at the first chunk that goes over.

Multipart uploads keep their own, larger limit (``PRS_MAX_UPLOAD_BYTES`` plus a little for the
multipart framing and form fields); every other body is held to ``PRS_MAX_JSON_BYTES``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The multipart framing and the few text fields around the file part.
MULTIPART_OVERHEAD = 64 * 1024


class BodyTooLarge(HTTPException):
    """413: a starlette HTTPException, so FastAPI's body parsing lets it through unchanged."""

    def __init__(self, detail: str) -> None:
        # The rest of the body is never read; the connection cannot carry another request.
        super().__init__(413, detail, headers={"Connection": "close"})


Refuse = Callable[[Request, BodyTooLarge], Awaitable[Response]]


class BodyLimitMiddleware:
    """Refuses over-limit bodies with ``refuse``'s response (the gateway's 413 problem)."""

    def __init__(self, app: ASGIApp, *, json_bytes: int, upload_bytes: int, refuse: Refuse) -> None:
        self.app = app
        self.refuse = refuse
        # (limit, the 413's detail), worked out once rather than on every request.
        self._json = json_bytes, f"request bodies are limited to {json_bytes} bytes"
        self._multipart = (
            upload_bytes + MULTIPART_OVERHEAD,
            f"files are limited to {upload_bytes} bytes",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        multipart = headers.get("content-type", "").lower().startswith("multipart/form-data")
        limit, detail = self._multipart if multipart else self._json
        declared = headers.get("content-length", "")
        # A malformed Content-Length never gets here: the HTTP server refuses it first.
        if declared.isdigit() and int(declared) > limit:
            response = await self.refuse(Request(scope), BodyTooLarge(detail))
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            # Also covers a Content-Length that understates the body, should a server allow it.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(detail)
            return message

        await self.app(scope, counted, send)
