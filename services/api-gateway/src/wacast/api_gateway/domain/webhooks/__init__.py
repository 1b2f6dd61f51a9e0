"""`/api/v1/webhooks`: endpoints, their delivery log, replays."""
