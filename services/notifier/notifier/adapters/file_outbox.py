"""The embedded backend: every email becomes one ``.eml`` file in an outbox folder.

Files are named after the Message-ID, which is derived from the request's message id, so a
resent email replaces its earlier copy instead of adding a second one.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from email.message import EmailMessage
from pathlib import Path

from notifier.mailer import MailPermanentError
from prs_shared.storage import safe_join

_UNSAFE = re.compile(r"[^A-Za-z0-9_.@-]")


class FileOutboxMailer:
    """A :class:`~notifier.mailer.Mailer` that writes ``<outbox>/<message id>.eml`` atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, message: EmailMessage) -> Path:
        message_id = str(message.get("Message-ID", "")).strip("<> ")
        if not message_id:
            raise MailPermanentError("the message has no Message-ID")
        return safe_join(self.directory, _UNSAFE.sub("_", message_id) + ".eml")

    async def send(self, message: EmailMessage) -> None:
        path = self.path_for(message)
        data = message.as_bytes()
        await asyncio.to_thread(_write_atomically, path, data)

    async def close(self) -> None:
        return None


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
