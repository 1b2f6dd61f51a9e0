"""The campaigns resource."""
