"""Structured logs: one JSON object per line on stderr, for every `imagehost.*` logger.

    {"ts": "2026-…Z", "level": "info", "logger": "imagehost.request", "msg": "request",
     "request_id": "…", "method": "GET", "route": "/images/{image_id}/{variant}", "status": 200, …}

`event(logger, name, **fields)` writes one such line with its fields; other log calls become a
line with "msg". No secret ever reaches a line: query strings are never logged (paths only), and
`scrub` removes what looks like one anyway, in messages and fields alike: the values of `token`,
`s` (URL signatures), `X-Amz-Signature`/`X-Amz-Credential`/`X-Amz-Security-Token`, `Signature`,
and bearer keys.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:token|s|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|key)=)[^&;\s\"']*")
BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',]+")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def scrub(text: str) -> str:
    return BEARER.sub(r"\1[redacted]", SECRET_QUERY.sub(r"\1[redacted]", text))


def _clean(value):
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            line["error"] = trace.splitlines()[-1]
            line["traceback"] = trace
        return json.dumps(_clean(line), default=str)


def configure(level: int = logging.INFO) -> None:
    """Every imagehost.* logger writes JSON lines to stderr (once per process)."""
    root = logging.getLogger("imagehost")
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"fields": fields})


def request_id(header: str | None) -> str | None:
    """A request id as the edge (or a client) sent it, if it is a sane one; else None."""
    return header if header and REQUEST_ID.match(header) else None
