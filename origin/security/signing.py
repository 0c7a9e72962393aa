"""Signed, expiring delivery URLs.

    /images/{id}/w600.webp?k={key id}&e={expires, unix seconds}&s={signature}

    signature = base64url(HMAC-SHA256(secret[k], "{path}\\n{e}")), unpadded

The edge (nginx + njs, edge/) and the origin check the same signature. Keys
rotate: IMAGEHOST_SIGNING_KEYS lists `id:secret` pairs; the first signs, all
verify until removed. Only the path is signed: a variant's other query
parameters never change what is served.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from origin.errors import Forbidden


EXPIRY = re.compile(r"0|[1-9][0-9]{0,11}")  # unix seconds, as sign_path writes them (and the edge checks)


class SignatureRefused(Forbidden):
    """A missing, altered or expired signature (403)."""

    code = "bad_signature"


@dataclass(frozen=True)
class SigningKeys:
    keys: tuple[tuple[str, str], ...]  # (key id, secret), the first one signs

    @classmethod
    def parse(cls, text: str) -> "SigningKeys":
        pairs = []
        for item in text.split(","):
            kid, sep, secret = item.strip().partition(":")
            if not sep or not kid or not secret:
                if item.strip():
                    raise ValueError("signing keys are comma-separated id:secret pairs")
                continue
            if not kid.isalnum() or len(kid) > 16:
                raise ValueError(f"signing key id {kid!r} must be 1-16 letters or digits")
            pairs.append((kid, secret))
        return cls(tuple(pairs))

    @staticmethod
    def generate() -> str:
        return f"k1:{secrets.token_urlsafe(32)}"

    def secret(self, kid: str) -> str | None:
        return dict(self.keys).get(kid)

    @property
    def current(self) -> tuple[str, str]:
        if not self.keys:
            raise SignatureRefused("no signing key is configured")
        return self.keys[0]


def signature(secret: str, path: str, expires: int) -> str:
    mac = hmac.new(secret.encode(), f"{path}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def sign_path(keys: SigningKeys, path: str, expires_in: int, now: float | None = None) -> str:
    kid, secret = keys.current
    expires = int((now if now is not None else time.time()) + expires_in)
    return f"{path}?{urlencode({'k': kid, 'e': expires, 's': signature(secret, path, expires)})}"


def verify(keys: SigningKeys, path: str, params: dict, now: float | None = None) -> None:
    """Raise SignatureRefused unless params carry a valid, unexpired signature for path."""
    kid, expires, given = params.get("k"), params.get("e"), params.get("s")
    if not (kid and expires and given):
        raise SignatureRefused("this URL must be signed (k, e and s parameters)")
    secret = keys.secret(str(kid))
    if secret is None:
        raise SignatureRefused("unknown or retired signing key")
    expires = str(expires)
    if not EXPIRY.fullmatch(expires):  # one spelling, ASCII digits (int() would also read "0١٢")
        raise SignatureRefused("malformed expiry")
    expires_at = int(expires)
    # bytes: compare_digest refuses non-ASCII str (a TypeError, that is a 500, for `s=%C2%80`)
    if not hmac.compare_digest(signature(secret, path, expires_at).encode(), str(given).encode("utf-8", "replace")):
        raise SignatureRefused("signature does not match")
    if expires_at < (now if now is not None else time.time()):
        raise SignatureRefused("signed URL has expired")
