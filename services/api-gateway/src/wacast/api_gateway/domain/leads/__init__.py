"""The leads resource."""
