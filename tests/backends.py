"""Fixtures for the production adapters' real backends: moto's S3 server, the local PostgreSQL."""
