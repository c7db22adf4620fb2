"""Alembic environment of the file-processor service."""

from file_processor.models import Base
from prs_shared.db.migrations import run_env
from prs_shared.db.tables import messaging_metadata

run_env([messaging_metadata, Base.metadata])
