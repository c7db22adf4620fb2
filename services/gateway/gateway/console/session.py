"""The console's login session: a signed, expiring cookie naming an API key, never holding it.

The cookie carries the key's id, a fingerprint of its stored hash (so a key replaced under the
same id no longer opens the session) and the session's CSRF token; it is signed with the
gateway's console secret. Each request looks the key up again, so a revoked key ends its sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import Principal, Role
from gateway.models import ApiKey

COOKIE = "prs_console"
COOKIE_PATH = "/console"


@dataclass(frozen=True)
class ConsoleSession:
    """Who is logged in, and the token their state-changing forms must carry."""

    principal: Principal
    csrf: str

    @property
    def may_change(self) -> bool:
        """Whether the role may act at all (a viewer sees no buttons that change anything)."""
        return self.principal.role in (Role.ADMIN, Role.OPERATOR)


class SessionSigner:
    """Issues and reads session cookies, signed with ``secret``, valid for ``max_age`` seconds."""

    def __init__(self, secret: str, max_age: int) -> None:
        self._secret = secret.encode()
        self._serializer = URLSafeTimedSerializer(secret, salt="prs-console-session")
        self.max_age = max_age

    def _fingerprint(self, key_hash: str) -> str:
        return hmac.new(self._secret, key_hash.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, key_id: str, key_hash: str) -> str:
        return self._serializer.dumps(
            {"k": key_id, "f": self._fingerprint(key_hash), "c": secrets.token_urlsafe(24)}
        )

    async def read(self, cookie: str | None, session: AsyncSession) -> ConsoleSession | None:
        """The session the cookie opens, or None (absent, forged, expired, key revoked)."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "kfc"):
            return None
        row = (
            await session.execute(
                select(ApiKey).where(ApiKey.id == data["k"], ApiKey.revoked_at.is_(None))
            )
        ).scalar_one_or_none()
        if row is None or not hmac.compare_digest(self._fingerprint(row.key_hash), data["f"]):
            return None
        principal = Principal(row.id, row.name, Role(row.role), row.organization_id)
        return ConsoleSession(principal, data["c"])
