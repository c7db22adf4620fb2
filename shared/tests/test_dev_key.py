"""The development key file the gateway writes and ``prs`` reads."""

from __future__ import annotations

import stat
from pathlib import Path

from prs_shared.dev_key import read_dev_key, write_dev_key


def test_the_written_key_is_read_back_from_the_data_dir(tmp_path: Path) -> None:
    write_dev_key(tmp_path / "data", "k-123")
    assert read_dev_key({"PRS_DATA_DIR": str(tmp_path / "data")}) == "k-123"


def test_the_key_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = write_dev_key(tmp_path, "k-123")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_outside_development_the_key_file_is_ignored(tmp_path: Path) -> None:
    write_dev_key(tmp_path, "k-123")
    env = {"PRS_DATA_DIR": str(tmp_path), "PRS_ENVIRONMENT": "production"}
    assert read_dev_key(env) is None


def test_no_key_file_reads_as_no_key(tmp_path: Path) -> None:
    assert read_dev_key({"PRS_DATA_DIR": str(tmp_path)}) is None
