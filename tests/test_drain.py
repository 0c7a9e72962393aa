"""The origin reads what is left of a refused body (up to its bound), so the connection that carried
it stays whole and the refusal reaches the client: see origin/http/drain.py."""
from __future__ import annotations

import io

import falcon
import falcon.testing

from origin.http.drain import CDN_BODY_LIMIT, DrainUnreadBody

LIMIT = 20 * 1024 * 1024


class Refuse:
    def on_put(self, req, resp):
        raise falcon.HTTPContentTooLarge(title="too_large")  # from Content-Length alone, unread


class Counted(io.RawIOBase):
    """A body of `size` zero bytes that counts what was read of it."""

    def __init__(self, size: int):
        self.left, self.read_bytes = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = b"\0" * n
        self.left -= n
        self.read_bytes += n
        return n


def put(size: int) -> tuple[str, Counted]:
    app = falcon.App(middleware=[DrainUnreadBody(LIMIT)])
    app.add_route("/upload", Refuse())
    body = Counted(size)
    environ = falcon.testing.create_environ("/upload", method="PUT", headers={"Content-Length": str(size)})
    environ["wsgi.input"] = io.BufferedReader(body)
    statuses = []
    b"".join(app(environ, lambda status, headers: statuses.append(status)))
    return statuses[0], body


def test_a_refused_body_a_lenient_cdn_passes_is_read_to_its_end():
    for size in (LIMIT + 1, LIMIT + 12_000_000, 64 * 1024 * 1024):
        status, body = put(size)
        assert status.startswith("413") and body.read_bytes == size, (size, body.read_bytes)


def test_a_body_over_the_bound_is_left_unread():
    status, body = put(CDN_BODY_LIMIT + 1)
    assert status.startswith("413") and body.read_bytes < 1024 * 1024
