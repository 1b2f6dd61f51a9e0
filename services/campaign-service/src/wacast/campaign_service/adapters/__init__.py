"""What the service talks to: Postgres private tables, the object store, the web."""
