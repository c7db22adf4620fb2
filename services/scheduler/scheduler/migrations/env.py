"""Alembic environment of the scheduler service."""

from prs_shared.db.migrations import run_env
from prs_shared.db.tables import messaging_metadata
from scheduler.models import Base

run_env([messaging_metadata, Base.metadata])
