"""Owns leads, media and campaigns."""
