"""Serving the course's models: Lambda handlers (handler.py), a local server (local.py), the website."""
