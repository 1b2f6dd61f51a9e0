"""Builds read models in Postgres and answers queries."""
