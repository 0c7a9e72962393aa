"""Helpers that start and stop the local daemons the default setup runs (clamd)."""
