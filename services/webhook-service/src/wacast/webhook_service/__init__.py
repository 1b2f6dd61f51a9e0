"""Webhook delivery: signed, retried, logged and replayable; never in the send path."""
