"""Shared plumbing: settings, broker, event store, projections, clock, observability."""
