"""Alembic environment of the gateway service."""

from gateway.models import Base
from prs_shared.db.migrations import run_env
from prs_shared.db.tables import messaging_metadata

run_env([Base.metadata, messaging_metadata])
