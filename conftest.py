"""Shared fixtures for every test in the workspace (real nats-server and Postgres)."""

pytest_plugins = ["wacast.runtime.testing"]
