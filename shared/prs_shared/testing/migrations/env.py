"""Alembic environment of the probe service used by the runtime's tests."""

from prs_shared.db.migrations import run_env
from prs_shared.db.tables import messaging_metadata
from prs_shared.testing.probe import probe_metadata

run_env([messaging_metadata, probe_metadata])
