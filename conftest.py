"""Fixtures every test directory shares."""

pytest_plugins = ["prs_shared.testing.fixtures"]
