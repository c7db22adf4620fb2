"""What a finished task offers to download, as listed in its result.

A processed file's result names its variants (name → file store key); the status answer adds
``downloads``, the URL of each through the task, so a caller never needs the store's keys.
"""

from __future__ import annotations

from typing import Any


def file_variants(result: dict[str, Any]) -> dict[str, str]:
    """A processed file's variants (name → store key) from a task's result; {} for others."""
    variants = result.get("variants")
    if not isinstance(variants, dict):
        return {}
    return {str(k): v for k, v in variants.items() if isinstance(v, str)}


def with_downloads(task_id: str, result: dict[str, Any] | None) -> dict[str, Any] | None:
    """``result`` with ``downloads`` (variant → path of its download) when it has variants."""
    variants = file_variants(result or {})
    if not variants or result is None:
        return result
    base = f"/api/background-tasks/{task_id}/download/?variant="
    return {**result, "downloads": {name: base + name for name in variants}}
