"""Delivery pipeline: request (path → options), negotiate (Accept → format), render."""
