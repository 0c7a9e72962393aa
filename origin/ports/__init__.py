"""Ports: one Protocol per outside system, one module per adapter."""
