"""Owns sequences and enrollments."""
