"""POST /v1/sign: signed, expiring delivery URLs (origin/security/signing.py).

    Authorization: Bearer <API key>
    {"paths": ["/images/{id}/w600.webp", ...], "expires_in": 3600}
    → 200 {"urls": ["{base}/images/{id}/w600.webp?k=..&e=..&s=..", ...], "expires": <unix seconds>}

Paths must be delivery paths within the allow-lists (pipeline/request.py; or an image's
`placeholder`), at most MAX_PATHS of them; expires_in is whole seconds, 1 s .. 1 year. Signed with
the first key of IMAGEHOST_SIGNING_KEYS; every listed key still verifies.
"""
from __future__ import annotations

import time

from origin.errors import InvalidRequest, Unavailable
from origin.keys import check_id
from origin.pipeline.request import parse
from origin.security.apikeys import ApiKeys, require_owner
from origin.security.signing import SigningKeys, sign_path

MAX_PATHS = 500
PLACEHOLDER = "placeholder"
MAX_EXPIRES_IN = 365 * 24 * 3600


def delivery_path(path) -> str:
    """The path itself when it is a delivery URL the origin would serve, else InvalidRequest."""
    if not isinstance(path, str) or not path.startswith("/images/"):
        raise InvalidRequest("each path must be a delivery path: /images/{id}/{variant}")
    parts = path.split("/")
    if len(parts) != 4 or "?" in path or "#" in path:
        raise InvalidRequest("each path must be /images/{id}/{variant}, without a query", path=path[:200])
    return path


class SignResource:
    def __init__(self, settings, api_keys: ApiKeys):
        self.api_keys = api_keys
        self.keys = SigningKeys.parse(settings.signing_keys)
        self.widths = settings.widths
        self.thumb_sizes = settings.thumb_sizes
        self.presets = settings.named_presets
        self.base_url = settings.base_url

    def _request(self, body) -> tuple[list[str], int]:
        if not isinstance(body, dict):
            raise InvalidRequest('expected a JSON object: {"paths": [...], "expires_in": seconds}')
        paths, expires_in = body.get("paths"), body.get("expires_in")
        if not isinstance(paths, list) or not 1 <= len(paths) <= MAX_PATHS:
            raise InvalidRequest(f"paths must be a list of 1 to {MAX_PATHS} delivery paths")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int):
            raise InvalidRequest("expires_in must be a whole number of seconds")
        if not 1 <= expires_in <= MAX_EXPIRES_IN:
            raise InvalidRequest(f"expires_in must be between 1 and {MAX_EXPIRES_IN} seconds")
        checked = []
        for path in paths:
            path = delivery_path(path)
            _, _, image_id, variant = path.split("/")
            if variant == PLACEHOLDER:  # origin/http/placeholder.py
                check_id(image_id)
            else:
                parse(image_id, variant, self.widths, self.thumb_sizes, self.presets)
            checked.append(path)
        return checked, expires_in

    def on_post(self, req, resp) -> None:
        require_owner(self.api_keys, req.get_header("Authorization"))
        paths, expires_in = self._request(req.get_media())
        if not self.keys.keys:
            raise Unavailable("no signing key is configured (IMAGEHOST_SIGNING_KEYS)")
        now = time.time()
        resp.media = {
            "urls": [self.base_url + sign_path(self.keys, path, expires_in, now=now) for path in paths],
            "expires": int(now + expires_in),
        }
        resp.cache_control = ["no-store"]
