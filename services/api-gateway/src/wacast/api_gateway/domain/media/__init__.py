"""The media resource."""
