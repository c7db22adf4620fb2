"""Alembic environment of the deal-workflow service."""

from deal_workflow.models import Base
from prs_shared.db.migrations import run_env
from prs_shared.db.tables import messaging_metadata

run_env([messaging_metadata, Base.metadata])
