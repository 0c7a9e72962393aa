"""Read a bucket of existing originals (bulk ingest's `s3://bucket/prefix`), through boto3.

A migration source, not the store: any bucket the credentials can read, on the configured
endpoint (IMAGEHOST_S3_ENDPOINT_URL and region: AWS, R2, MinIO, …). Keys are listed in the
order S3 returns them (lexicographic); "folder" markers (keys ending in /) are skipped.
Failures raise StoreUnavailable, never a raw botocore exception.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from origin.errors import InvalidRequest, StoreUnavailable
from origin.ports.store_s3 import client_config


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    size: int

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse(url: str) -> tuple[str, str]:
    """"s3://bucket/some/prefix" -> ("bucket", "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise InvalidRequest(f"not an s3://bucket/prefix URL: {url!r}")
    return parts.netloc, parts.path.lstrip("/")


class S3Source:
    def __init__(self, endpoint_url: str = "", region: str = "us-east-1"):
        self.client = boto3.session.Session().client(
            "s3", region_name=region or None, endpoint_url=endpoint_url or None,
            config=client_config(path_style=bool(endpoint_url)))

    @classmethod
    def from_settings(cls, settings) -> "S3Source":
        return cls(settings.s3_endpoint_url, settings.s3_region)

    def list(self, url: str) -> Iterator[S3Object]:
        bucket, prefix = parse(url)
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    if not obj["Key"].endswith("/"):
                        yield S3Object(bucket, obj["Key"], obj["Size"])
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"cannot list {url}: {exc}") from exc

    def read(self, obj: S3Object) -> bytes:
        try:
            return self.client.get_object(Bucket=obj.bucket, Key=obj.key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"cannot read {obj.url}: {exc}") from exc
