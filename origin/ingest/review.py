"""A reviewer's decision on a held image, the same from the API (http/review.py) and the command
line (imagehost approve / reject): approve sends it on to processing, reject deletes it."""
from __future__ import annotations


def approve(catalog, queue, image_id: str, reviewer: str) -> bool:
    """held -> processing, and a job for the workers; False if it was not held."""
    if not catalog.transition(image_id, ("held",), "processing", reason="", detail=f"approved by {reviewer}"):
        return False
    queue.send(image_id)
    return True
