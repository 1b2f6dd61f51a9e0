"""The account resource."""
