"""API keys: `Authorization: Bearer <key>`.

IMAGEHOST_API_KEYS holds `key:owner` pairs (uploaders), IMAGEHOST_REVIEWER_KEYS
`key:name` pairs (reviewers). Keys are compared in constant time and never logged.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass

from origin.errors import Forbidden, Unauthorized

__all__ = ["ApiKeys", "Forbidden", "Principal", "Unauthorized", "require_owner", "require_reviewer"]


@dataclass(frozen=True)
class Principal:
    name: str  # the owner (uploaders) or the reviewer's name
    reviewer: bool


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in text.split(","):
        key, sep, name = item.strip().partition(":")
        if sep and key and name:
            pairs.append((key, name))
    return tuple(pairs)


@dataclass(frozen=True)
class ApiKeys:
    owners: tuple[tuple[str, str], ...]
    reviewers: tuple[tuple[str, str], ...]

    @classmethod
    def from_settings(cls, settings) -> "ApiKeys":
        return cls(_pairs(settings.api_keys), _pairs(settings.reviewer_keys))

    def identify(self, authorization: str | None) -> Principal:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
        key = key.strip()
        found = None
        for known, name in self.owners:
            if hmac.compare_digest(known.encode(), key.encode()):
                found = Principal(name, reviewer=False)
        for known, name in self.reviewers:
            if hmac.compare_digest(known.encode(), key.encode()):
                found = Principal(name, reviewer=True)
        if found is None:
            raise Unauthorized("unknown API key")
        return found


def require_owner(keys: ApiKeys, authorization: str | None) -> Principal:
    return keys.identify(authorization)


def require_reviewer(keys: ApiKeys, authorization: str | None) -> Principal:
    principal = keys.identify(authorization)
    if not principal.reviewer:
        raise Forbidden("this needs a reviewer key")
    return principal
