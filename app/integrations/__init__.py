"""Clients of the outside world (HTTP): they know nothing of the database."""
