"""No control character reaches the SMTP server in a command (DESIGN §7).

``EmailMessage`` refuses CR and LF in header values, but other control characters (NUL, ESC, DEL)
pass through into the recipient list; aiosmtplib refuses them in SMTP commands from 5.1.1 on.
The notifier must therefore never be installed with an older aiosmtplib.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from notifier.adapters.smtp import SmtpMailer
from notifier.mailer import MailPermanentError

ROOT = Path(__file__).resolve().parents[3]
FIRST_SAFE = Version("5.1.1")


def _declared_requirement() -> Requirement:
    project = tomllib.loads((ROOT / "services/notifier/pyproject.toml").read_text())["project"]
    return next(Requirement(dep) for dep in project["dependencies"] if dep.startswith("aiosmtplib"))


def test_the_notifier_declares_no_aiosmtplib_older_than_5_1_1() -> None:
    specifier = _declared_requirement().specifier
    assert FIRST_SAFE in specifier
    assert Version("5.1.0") not in specifier
    assert Version("3.0") not in specifier


def test_the_lock_agrees_with_the_declared_floor() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages = {p["name"]: p for p in lock["package"]}
    locked = Version(packages["aiosmtplib"]["version"])
    declared = next(
        d
        for d in packages["prs-notifier"]["metadata"]["requires-dist"]
        if d["name"] == "aiosmtplib"
    )
    assert declared["specifier"] == str(_declared_requirement().specifier)
    assert locked >= FIRST_SAFE
    assert Version(importlib.metadata.version("aiosmtplib")) >= FIRST_SAFE


@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x7f"])
async def test_a_recipient_with_a_control_character_is_refused_before_it_reaches_the_server(
    smtp_sink: Any, control: str
) -> None:
    smtp = SmtpMailer(
        host=smtp_sink.host,
        port=smtp_sink.port,
        mail_from="PRS <no-reply@prs.example.com>",
        timeout=5,
    )
    message = EmailMessage()
    message["Subject"] = "hello"
    message["From"] = "PRS <no-reply@prs.example.com>"
    message["To"] = f"sam{control}@acme.example.com"
    message.set_content("body")
    with pytest.raises(MailPermanentError, match="control character"):
        await smtp.send(message)
    await smtp.close()
    assert smtp_sink.received == []
