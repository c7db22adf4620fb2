"""Alembic environment of the notifier service."""

from notifier.models import Base
from prs_shared.db.migrations import run_env
from prs_shared.db.tables import messaging_metadata

run_env([messaging_metadata, Base.metadata])
