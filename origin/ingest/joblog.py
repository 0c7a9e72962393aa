"""One JSON log line and the metrics per pipeline step (origin/ingest/worker.py run_job).

    {"msg": "job_step", "image_id": …, "request_id": (the upload's), "owner": …, "step": "validating",
     "to": "moderating", "outcome": "ok", "ms": 41.2, "attempt": 1}

The request id is the one the upload's request carried (X-Request-Id from the edge), kept in
the record's metadata, so an operator can follow one image from the edge's log to its last step.
"""
from __future__ import annotations

import json
import logging
import time

from origin.logs import event

log = logging.getLogger("imagehost.job")


def request_id_of(record) -> str:
    try:
        return str(json.loads(record.metadata or "{}").get("request_id", ""))
    except (ValueError, AttributeError):
        return ""


def started() -> float:
    return time.perf_counter()


def done(metrics, record, since: float, to_state: str, to_record=None) -> None:
    """A step ran in `record.state` and the image is now in `to_state`."""
    seconds = time.perf_counter() - since
    _count(metrics, record.state, "ok", seconds)
    if metrics is not None and metrics.resting is not None and to_state in ("ready", "quarantined", "held"):
        reason = (to_record.reason if to_record is not None else "") or ("" if to_state == "ready" else "unknown")
        metrics.resting.labels(state=to_state, reason=reason).inc()
    event(log, "job_step", image_id=record.id, request_id=request_id_of(record), owner=record.owner,
          step=record.state, to=to_state, outcome="ok", ms=round(1000 * seconds, 1), attempt=record.attempts)


def failed(metrics, record, since: float, exc: BaseException, retry: bool) -> None:
    seconds = time.perf_counter() - since
    outcome = "retry" if retry else "error"
    _count(metrics, record.state, outcome, seconds)
    event(log, "job_step", logging.WARNING, image_id=record.id, request_id=request_id_of(record),
          owner=record.owner, step=record.state, outcome=outcome, ms=round(1000 * seconds, 1),
          attempt=record.attempts, error=f"{type(exc).__name__}: {exc}"[:300])


def _count(metrics, step: str, outcome: str, seconds: float) -> None:
    if metrics is None or metrics.job_steps is None:
        return
    metrics.job_steps.labels(step=step, outcome=outcome).inc()
    metrics.job_step_seconds.labels(step=step).observe(seconds)
