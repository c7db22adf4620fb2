"""Fixtures every test directory shares."""

import os

pytest_plugins = ["prs_shared.testing.fixtures"]

# The cluster tests start a three-node broker of their own; `make test-cluster` runs them.
collect_ignore = [] if os.environ.get("PRS_CLUSTER_TESTS") else ["tests/cluster"]
