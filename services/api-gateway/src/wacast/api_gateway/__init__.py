"""Public HTTP and WebSocket API and the web dashboard."""
