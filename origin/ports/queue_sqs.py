"""SQS queue: S3 `ObjectCreated` notifications for uploads, plus the origin's own messages.

An upload lands at `{prefix}uploads/{id}`; S3 notifies the queue (configured by
`imagehost setup`); a worker receives the event with a visibility timeout, and
deletes the message only when the image reached a resting state. A worker killed
mid-job never deletes it, so SQS hands it to the next worker after the timeout.
"""
from __future__ import annotations

import json
from urllib.parse import unquote_plus

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from origin.errors import Unavailable
from origin.ports.queue import Job

UPLOAD_MARKER = "uploads/"


def queue_name(settings) -> str:
    """The queue `imagehost setup` creates when IMAGEHOST_SQS_QUEUE_URL names none."""
    return f"{settings.s3_bucket}-uploads"


class QueueUnavailable(Unavailable):
    code = "queue_unavailable"


def image_ids(body: str) -> list[str]:
    """The image ids a message speaks of: an S3 event's object keys, or our own {"image_id"}."""
    try:
        message = json.loads(body)
    except ValueError:
        return []
    if isinstance(message, dict) and isinstance(message.get("image_id"), str):
        return [message["image_id"]]
    ids = []
    for record in (message.get("Records") or []) if isinstance(message, dict) else []:
        key = unquote_plus(record.get("s3", {}).get("object", {}).get("key", ""))
        head, marker, image_id = key.rpartition(UPLOAD_MARKER)
        if marker and image_id and "/" not in image_id:
            ids.append(image_id)
    return ids


class SqsQueue:
    def __init__(self, client, queue_url: str, visibility_seconds: int = 120, queue_name: str = ""):
        self.client = client
        self._queue_url = queue_url
        self.queue_name = queue_name  # looked up on first use when no URL is given
        self.visibility = visibility_seconds

    @property
    def queue_url(self) -> str:
        if not self._queue_url:
            try:
                self._queue_url = self.client.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
            except (BotoCoreError, ClientError) as exc:
                raise QueueUnavailable(f"sqs: no queue URL configured and {self.queue_name!r} not found: {exc}") \
                    from exc
        return self._queue_url

    @classmethod
    def from_settings(cls, settings) -> "SqsQueue":
        client = boto3.client(
            "sqs",
            region_name=settings.s3_region,
            endpoint_url=settings.sqs_endpoint_url or settings.s3_endpoint_url or None,
            config=Config(connect_timeout=2, read_timeout=25, retries={"max_attempts": 2}),
        )
        return cls(client, settings.sqs_queue_url, settings.job_lease_seconds, queue_name(settings))

    def _call(self, name: str, **kwargs):
        try:
            return getattr(self.client, name)(QueueUrl=self.queue_url, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise QueueUnavailable(f"sqs {name} failed: {exc}") from exc

    def send(self, image_id: str) -> None:
        self._call("send_message", MessageBody=json.dumps({"image_id": image_id}))

    def receive(self, wait_seconds: float) -> list[Job]:
        answer = self._call(
            "receive_message", MaxNumberOfMessages=1, WaitTimeSeconds=max(0, min(20, int(wait_seconds))),
            VisibilityTimeout=self.visibility,
        )
        jobs = []
        for message in answer.get("Messages", []):
            ids = image_ids(message["Body"])
            if not ids:  # s3:TestEvent and the like
                self._call("delete_message", ReceiptHandle=message["ReceiptHandle"])
            jobs.extend(Job(image_id, message["ReceiptHandle"]) for image_id in ids)
        return jobs

    def ack(self, job: Job) -> None:
        self._call("delete_message", ReceiptHandle=job.receipt)

    def retry_later(self, job: Job, delay_seconds: float) -> None:
        self._call("change_message_visibility", ReceiptHandle=job.receipt, VisibilityTimeout=int(delay_seconds))
