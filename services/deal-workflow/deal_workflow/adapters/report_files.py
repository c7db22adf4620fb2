"""An audit report as JSON (complete), CSV (one value per line) and HTML (for reading)."""

from __future__ import annotations

import csv
import io
import json
from html import escape
from typing import Any

from deal_workflow.domain.reports import AuditReport

FORMATS = ("json", "csv", "html")


def report_key(report_id: str, fmt: str) -> str:
    return f"reports/{report_id}.{fmt}"


def _document(report: AuditReport) -> dict[str, Any]:
    return {
        "report_id": report.report_id,
        "report_type": report.report_type,
        "organization_id": report.organization_id,
        "days": report.days,
        "period": {
            "start": report.period_start.isoformat(),
            "end": report.period_end.isoformat(),
        },
        "generated_at": report.generated_at.isoformat(),
        "sections": {
            s.name: {"title": s.title, "summary": s.summary, "columns": s.columns, "rows": s.rows}
            for s in report.sections
        },
    }


def render_json(report: AuditReport) -> bytes:
    return json.dumps(_document(report), indent=2, ensure_ascii=False).encode()


def render_csv(report: AuditReport) -> bytes:
    """Long format — ``section, record, field, value`` — so sections of any shape share a file.

    Summary figures have record ``summary``; a row's record is its position in the section.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "record", "field", "value"])
    for section in report.sections:
        for key, value in section.summary.items():
            writer.writerow([section.name, "summary", key, _cell(value)])
        for index, row in enumerate(section.rows, start=1):
            for column in section.columns:
                writer.writerow([section.name, str(index), column, _cell(row.get(column, ""))])
    return out.getvalue().encode()


def _cell(value: str) -> str:
    # A leading = + - @ makes spreadsheets run the cell as a formula (CSV injection).
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def render_html(report: AuditReport) -> bytes:
    scope = report.organization_id or "all organizations"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Audit report {escape(report.report_id)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "th{background:#f3f3f3}</style></head><body>",
        f"<h1>Audit report ({escape(report.report_type)})</h1>",
        f"<p>Scope: {escape(scope)} &middot; last {report.days} days "
        f"({escape(report.period_start.isoformat())} to {escape(report.period_end.isoformat())})"
        f" &middot; generated {escape(report.generated_at.isoformat())}</p>",
    ]
    for section in report.sections:
        parts.append(f"<h2>{escape(section.title)}</h2>")
        parts.append("<table><tbody>")
        for key, value in section.summary.items():
            parts.append(f"<tr><th>{escape(key)}</th><td>{escape(value)}</td></tr>")
        parts.append("</tbody></table>")
        if section.rows:
            head = "".join(f"<th>{escape(c)}</th>" for c in section.columns)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>")
            for row in section.rows:
                cells = "".join(f"<td>{escape(row.get(c, ''))}</td>" for c in section.columns)
                parts.append(f"<tr>{cells}</tr>")
            parts.append("</tbody></table>")
        else:
            parts.append("<p>No records in this period.</p>")
    parts.append("</body></html>")
    return "\n".join(parts).encode()


RENDERERS = {"json": render_json, "csv": render_csv, "html": render_html}
