"""The service's private Postgres tables: the projection that builds them, and lookups."""
