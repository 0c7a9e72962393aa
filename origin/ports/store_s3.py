"""S3 object store through boto3: the production adapter (AWS S3, Cloudflare R2,
GCS interoperability, MinIO).

Every key lives under the configured prefix (`s3_prefix`, a folder: "a/b" means
keys "a/b/images/..."). A PUT is atomic by nature: a reader sees the old object
or the whole new one. An absent key raises `KeyMissing`; anything that keeps the
store from answering (no connection, timeouts, 5xx, a missing bucket, refused
credentials) raises `StoreUnavailable`, never a raw botocore exception.

Tiers are storage classes: `put` writes an object's class straight into its
tier where the placement says so (an owner-only kept source: cold at once) and
tags what the bucket's lifecycle rules select (origin/lifecycle/rules.py); the
bucket's rules do the later transitions. A GET of a GLACIER or DEEP_ARCHIVE
object not yet restored raises `ObjectArchived`; `restore` asks S3 for a copy.
"""
from __future__ import annotations

from contextlib import contextmanager

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from origin.errors import InvalidRequest, StoreUnavailable
from origin.ports.store import ARCHIVED, KeyMissing, ObjectArchived, Placement, Restore, StoredObject

MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
DELETE_BATCH = 1000  # the most keys one DeleteObjects call accepts


def client_config(path_style: bool) -> Config:
    """Fail fast: an unreachable endpoint costs a few seconds, not minutes."""
    options = dict(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})
    if path_style:  # MinIO, moto and most self-hosted endpoints have no virtual-host DNS
        options["s3"] = {"addressing_style": "path"}
    if "request_checksum_calculation" in Config.OPTION_DEFAULTS:
        # botocore >= 1.36 adds CRC checksums to every PUT by default; R2, MinIO and
        # other S3-compatible stores may reject them. Send them only when required.
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    return Config(**options)


class S3Store:
    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str = "", region: str = "us-east-1",
                 placement: Placement | None = None):
        self.bucket = bucket
        self.placement = placement or Placement()
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url or None
        # one client per store: boto3 clients are thread-safe (sessions are not)
        self.client = boto3.session.Session().client(
            "s3",
            region_name=region or None,
            endpoint_url=self.endpoint_url,
            config=client_config(path_style=self.endpoint_url is not None),
        )

    @classmethod
    def from_settings(cls, settings, placement: Placement | None = None) -> "S3Store":
        return cls(settings.s3_bucket, settings.s3_prefix, settings.s3_endpoint_url, settings.s3_region, placement)

    def _key(self, key: str) -> str:
        if not key or key.startswith("/"):
            raise InvalidRequest(f"bad store key {key!r}")
        return self.prefix + key

    def _where(self, key: str = "") -> str:
        at = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{key}{at}"

    @contextmanager
    def _errors(self, action: str, key: str = ""):
        """Translate botocore's exceptions into the port's."""
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if key and code in MISSING_CODES:
                raise KeyMissing(f"no object {key}") from None
            if key and code == "InvalidObjectState":
                tier = error.get("StorageClass") or "GLACIER"
                raise ObjectArchived(f"{key} is in {tier}: it must be restored before it can be read",
                                     key=key, tier=tier) from None
            message = error.get("Message") or ""
            raise StoreUnavailable(f"s3 store: {action} {self._where(key)} failed: {code} {message}".strip()) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"s3 store: {action} {self._where(key)} failed: {exc}") from exc

    def get(self, key: str) -> bytes:
        with self._errors("get", key):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return response["Body"].read()

    def put(self, key: str, data: bytes, content_type: str = "") -> None:
        extra = {}
        tier = self.placement.tier_for(key, len(data))
        if tier != "STANDARD":
            extra["StorageClass"] = tier
        tagging = self.placement.tagging_for(key)
        if tagging:
            extra["Tagging"] = tagging
        with self._errors("put", key):
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                ContentType=content_type or "application/octet-stream",
                **extra,
            )

    def exists(self, key: str) -> bool:
        try:
            with self._errors("head", key):
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except KeyMissing:
            return False
        return True

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def presigned_post(self, key: str, max_bytes: int, content_type: str | None, expires_in: int) -> dict:
        """A browser-usable POST form for exactly this key, at most max_bytes, of the declared type."""
        fields, conditions = {}, [["content-length-range", 1, max_bytes]]
        if content_type:
            fields["Content-Type"] = content_type
            conditions.append({"Content-Type": content_type})
        with self._errors("presign", key):
            return self.client.generate_presigned_post(
                Bucket=self.bucket, Key=self._key(key), Fields=fields, Conditions=conditions, ExpiresIn=expires_in)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under the folder `prefix`; return how many there were."""
        # a folder, as in LocalStore: "images/ab" must not take "images/abc/" with it;
        # an empty prefix is refused, so the whole store is never deleted
        full = self._key(prefix.rstrip("/") + "/")
        deleted = 0
        with self._errors("delete", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
            for page in pages:
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                for start in range(0, len(keys), DELETE_BATCH):
                    batch = keys[start : start + DELETE_BATCH]
                    result = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
                    if result.get("Errors"):
                        first = result["Errors"][0]
                        raise StoreUnavailable(
                            f"s3 store: delete {self._where(prefix)}: {len(result['Errors'])} objects not deleted"
                            f" ({first.get('Key')}: {first.get('Code')} {first.get('Message', '')})".rstrip()
                        )
                    deleted += len(batch)
        return deleted

    def folders(self, top: str):
        full = self._key(top.rstrip("/") + "/")
        with self._errors("list", top):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full, Delimiter="/")
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    yield common["Prefix"][len(full):].rstrip("/")

    def objects(self, prefix: str):
        full = self._key(prefix.rstrip("/") + "/")
        with self._errors("list", prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    yield StoredObject(obj["Key"][len(self.prefix):], obj["Size"], obj["LastModified"].timestamp(),
                                       obj.get("StorageClass") or "STANDARD")

    def set_tier(self, key: str, tier: str) -> None:
        """Copy the object onto itself in `tier` (what a lifecycle transition does; tags and metadata kept).
        Its LastModified becomes now: the bucket's own rules, which keep the age, are the usual way."""
        with self._errors("set tier", key):
            self.client.copy_object(Bucket=self.bucket, Key=self._key(key), StorageClass=tier,
                                    CopySource={"Bucket": self.bucket, "Key": self._key(key)},
                                    MetadataDirective="COPY", TaggingDirective="COPY")

    def restore(self, key: str, days: int = 7, speed: str = "Standard") -> Restore:
        with self._errors("head", key):
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        tier = head.get("StorageClass") or "STANDARD"
        if tier not in ARCHIVED:
            return Restore("not_archived", tier)
        state = head.get("Restore") or ""
        if 'ongoing-request="true"' in state:
            return Restore("in_progress", tier)
        if 'ongoing-request="false"' in state:
            return Restore("restored", tier)
        request = {"Days": days, "GlacierJobParameters": {"Tier": speed}}
        try:
            with self._errors("restore", key):
                self.client.restore_object(Bucket=self.bucket, Key=self._key(key), RestoreRequest=request)
        except StoreUnavailable as exc:
            if "RestoreAlreadyInProgress" in exc.message:
                return Restore("in_progress", tier)
            raise
        return Restore("requested", tier)

    def ping(self) -> None:
        with self._errors("head bucket"):
            self.client.head_bucket(Bucket=self.bucket)
