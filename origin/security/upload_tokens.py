"""Upload tokens for the local store's upload URL: signed, expiring, bound to one id and a size limit.

A token is single-use by construction: the upload endpoint accepts it only while
the image is still `requested`, and moves it on atomically.
"""
from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from origin.errors import Forbidden

SALT = "imagehost.upload"


class UploadTokenRefused(Forbidden):
    """Expired, altered, or for another image (403)."""

    code = "bad_upload_token"


@dataclass(frozen=True)
class UploadGrant:
    image_id: str
    max_bytes: int


class UploadTokens:
    def __init__(self, secret: str, max_age_seconds: int):
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.max_age = max_age_seconds

    def issue(self, grant: UploadGrant) -> str:
        return self._serializer.dumps({"id": grant.image_id, "max": grant.max_bytes})

    def check(self, token: str, image_id: str) -> UploadGrant:
        try:
            data = self._serializer.loads(token, max_age=self.max_age)
        except SignatureExpired:
            raise UploadTokenRefused("this upload URL has expired") from None
        except BadSignature:
            raise UploadTokenRefused("this upload URL is not valid") from None
        if data.get("id") != image_id:
            raise UploadTokenRefused("this upload URL is for another image")
        return UploadGrant(data["id"], int(data["max"]))
