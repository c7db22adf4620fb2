"""The local file store keeps every key inside its root."""

from __future__ import annotations

from pathlib import Path

import pytest

from prs_shared.storage import InvalidKey, LocalFileStore


def test_put_and_get_round_trip_under_nested_keys(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "store")
    store.put("invoices/org-1/2026/INV-1.pdf", b"%PDF-1.7")
    assert store.get("invoices/org-1/2026/INV-1.pdf") == b"%PDF-1.7"
    assert store.exists("invoices/org-1/2026/INV-1.pdf")
    store.delete("invoices/org-1/2026/INV-1.pdf")
    assert not store.exists("invoices/org-1/2026/INV-1.pdf")


@pytest.mark.parametrize("key", ["/etc/passwd", "../outside", "a/../../outside", "", "a\x00b", "."])
def test_keys_that_leave_the_store_are_refused(tmp_path: Path, key: str) -> None:
    store = LocalFileStore(tmp_path / "store")
    with pytest.raises(InvalidKey):
        store.path(key)


def test_a_symlink_pointing_out_of_the_store_is_refused(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "store")
    (tmp_path / "secret").write_text("no")
    (tmp_path / "store" / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(InvalidKey):
        store.path("link")
