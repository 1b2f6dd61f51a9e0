"""The sequences resource."""
