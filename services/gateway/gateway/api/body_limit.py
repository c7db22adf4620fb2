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

from collections.abc import Callable
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.settings import GatewaySettings

# The multipart framing and the few text fields around the file part.
MULTIPART_OVERHEAD = 64 * 1024


class BodyTooLarge(HTTPException):
    """413: a starlette HTTPException, so FastAPI's body parsing lets it through unchanged."""

    def __init__(self, detail: str) -> None:
        # The rest of the body is never read; the connection cannot carry another request.
        super().__init__(413, detail, headers={"Connection": "close"})


@dataclass(frozen=True)
class BodyLimits:
    json_bytes: int
    upload_bytes: int

    @classmethod
    def of(cls, settings: GatewaySettings) -> BodyLimits:
        return cls(settings.max_json_bytes, settings.max_upload_bytes)

    def check(self, content_type: str) -> tuple[int, str]:
        """The byte limit for a body of this content type, and the 413's detail."""
        if content_type.lower().startswith("multipart/form-data"):
            limit = self.upload_bytes + MULTIPART_OVERHEAD
            return limit, f"files are limited to {self.upload_bytes} bytes"
        return self.json_bytes, f"request bodies are limited to {self.json_bytes} bytes"


_DEFAULTS = BodyLimits(
    GatewaySettings.model_fields["max_json_bytes"].default,
    GatewaySettings.model_fields["max_upload_bytes"].default,
)


def limits_from_app(scope: Scope) -> BodyLimits:
    """The running gateway's limits; the defaults before its lifespan has set them."""
    state = getattr(scope["app"].state, "gateway", None)
    return BodyLimits.of(state.settings) if state is not None else _DEFAULTS


Refuse = Callable[[Request, BodyTooLarge], Response]


class BodyLimitMiddleware:
    """Refuses over-limit bodies with ``refuse``'s response (the gateway's 413 problem)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        refuse: Refuse,
        limits: Callable[[Scope], BodyLimits] = limits_from_app,
    ) -> None:
        self.app = app
        self.refuse = refuse
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        limit, detail = self.limits(scope).check(request.headers.get("content-type", ""))
        declared = request.headers.get("content-length", "")
        # A malformed Content-Length never gets here: the HTTP server refuses it first.
        if declared.isdigit() and int(declared) > limit:
            await self.refuse(request, BodyTooLarge(detail))(scope, receive, send)
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
