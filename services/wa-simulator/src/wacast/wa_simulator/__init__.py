"""A stand-in WhatsApp network for demo, tests and benchmarks."""
