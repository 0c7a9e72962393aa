"""Job queue port: at-least-once delivery of "look at image {id}" jobs.

Adapters:
  queue_local.LocalQueue   embedded default. The catalog is the durable queue:
                           every image in a pending state is a job; a worker
                           claims one with a lease (the visibility timeout) and a
                           worker that dies leaves the lease to expire, so the
                           next one finishes the image. `send` only wakes workers.
  queue_sqs.SqsQueue       SQS, fed by S3 `ObjectCreated` notifications for
                           uploads and by the origin itself (approvals, retries).

Jobs are idempotent: the worker reads the image's state and does the next step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# states in which an image still has work to do
PENDING = ("uploaded", "validating", "moderating", "processing")


@dataclass(frozen=True)
class Job:
    image_id: str
    receipt: str = ""  # the adapter's handle for ack / retry


class Queue(Protocol):
    def send(self, image_id: str) -> None: ...

    def receive(self, wait_seconds: float) -> list[Job]: ...

    def ack(self, job: Job) -> None: ...

    def retry_later(self, job: Job, delay_seconds: float) -> None: ...
