"""The shape of an audit report: named sections, each with a summary and rows of records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

SECTIONS_BY_TYPE: Mapping[str, tuple[str, ...]] = {
    "comprehensive": ("deals", "payments", "users", "security"),
    "deals": ("deals",),
    "payments": ("payments",),
    "users": ("users",),
    "security": ("security",),
}


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    summary: dict[str, str]
    columns: tuple[str, ...]
    rows: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class AuditReport:
    report_id: str
    report_type: str
    organization_id: str | None
    days: int
    period_start: datetime
    period_end: datetime
    generated_at: datetime
    sections: list[Section]


def progress_after(done: int, total: int) -> int:
    """Percent complete after ``done`` of ``total`` sections; writing the files is the rest."""
    return int(90 * done / total) if total else 90
