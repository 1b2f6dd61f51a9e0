"""Owns WhatsApp sessions, pairing and paced send lanes."""
