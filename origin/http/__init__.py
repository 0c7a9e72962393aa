"""HTTP resources: one module per resource, errors turned into answers in errors.py."""
