"""The service's Postgres tables (a projection of WEBHOOKS) and the HTTP client."""
