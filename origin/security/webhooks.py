"""Webhooks to an uploader's callback_url, signed so the receiver can verify them.

    POST callback_url
    Content-Type: application/json
    X-Imagehost-Timestamp: 1764374400
    X-Imagehost-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>

The receiver recomputes the HMAC over the timestamp and the raw body with the
shared secret (IMAGEHOST_WEBHOOK_SECRET) and rejects old timestamps.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.request
from urllib.parse import urlparse

log = logging.getLogger("imagehost.webhooks")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, tolerance: int = 300) -> bool:
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(time.time() - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature or "")


def valid_callback(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc) and len(url) <= 2000


def send(secret: str, url: str, event: dict, attempts: int = 3, timeout: float = 5.0) -> bool:
    """POST the event; a few quick retries, then give up (the status URL stays the source of truth)."""
    body = json.dumps(event, sort_keys=True).encode()
    for attempt in range(attempts):
        timestamp = int(time.time())
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            "User-Agent": "imagehost-webhook/1",
            "X-Imagehost-Timestamp": str(timestamp),
            "X-Imagehost-Signature": sign(secret, timestamp, body),
        })
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                if 200 <= resp.status < 300:
                    return True
        except OSError as exc:
            log.warning("webhook to %s failed (attempt %d): %s", urlparse(url).netloc, attempt + 1, exc)
        time.sleep(0.2 * (2**attempt))
    return False
