"""Purge fan-out to the edges, with a durable retry list.

Each base URL in IMAGEHOST_PURGE_URLS gets `POST {base}/purge/images/{id}`: the
nginx edge (edge/purge.js) unlinks every cached variant of the image (every
allow-listed size × format, and every format class of the negotiated URLs); the
Varnish edge (edge/imagehost.vcl) bans them. Both answer 2xx, and only from
loopback.

An edge that does not answer 2xx (down, restarting, refusing) is written to
{data_dir}/cdn/purge-pending.json (atomic rewrite under an flock, so every
gunicorn worker shares it) and retried by a background thread every
`retry_seconds`, and before each new purge, until it succeeds: a purge is never
forgotten. Requests go straight to the edge, never through an HTTP proxy.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from http.client import HTTPException
from pathlib import Path

from origin.keys import check_id

log = logging.getLogger("imagehost.cdn")


class EdgePurger:
    def __init__(self, urls, state_dir: Path, retry_seconds: float = 30.0, timeout: float = 5.0,
                 start: bool = True):
        self.urls = tuple(url.rstrip("/") for url in urls)
        self.state_dir = Path(state_dir)
        self.pending_path = self.state_dir / "purge-pending.json"
        self.retry_seconds = retry_seconds
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    @classmethod
    def from_settings(cls, settings) -> "EdgePurger":
        urls = [url.strip() for url in settings.purge_urls.split(",") if url.strip()]
        return cls(urls, settings.data_dir / "cdn")

    # the port
    def purge(self, image_id: str) -> None:
        check_id(image_id)
        self.retry_pending()
        failed = [url for url in self.urls if not self._send(url, image_id)]
        if failed:
            self._add_pending(failed, image_id)

    # the retry list
    def pending(self) -> list[dict]:
        with self._locked():
            return self._read()

    def retry_pending(self) -> int:
        """Send every pending purge once (one failure marks an edge down for this pass); return how many remain."""
        with self._locked():
            entries = self._read()
        if not entries:
            return 0
        done, down = set(), set()
        for entry in entries:
            if entry["url"] in down:
                continue
            if self._send(entry["url"], entry["image_id"]):
                done.add((entry["url"], entry["image_id"]))
            else:
                down.add(entry["url"])
        with self._locked():
            remaining = [e for e in self._read() if (e["url"], e["image_id"]) not in done]
            for entry in remaining:
                entry["attempts"] += entry["url"] in down
            self._write(remaining)
        if done:
            log.info("purge: %d pending purge(s) delivered, %d still pending", len(done), len(remaining))
        return len(remaining)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._retry_loop, name="imagehost-purge-retry", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 1)

    def _retry_loop(self) -> None:
        while not self._stop.wait(self.retry_seconds):
            try:
                self.retry_pending()
            except Exception:  # keep retrying; the next pass may work
                log.exception("purge: retry pass failed")

    def _send(self, base: str, image_id: str) -> bool:
        request = urllib.request.Request(f"{base}/purge/images/{image_id}", data=b"", method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read()
                return 200 <= response.status < 300
        except (urllib.error.URLError, OSError, HTTPException) as exc:
            log.warning("purge: %s did not take the purge of %s (%s); it will be retried", base, image_id, exc)
            return False

    def _add_pending(self, urls: list[str], image_id: str) -> None:
        with self._locked():
            entries = self._read()
            known = {(e["url"], e["image_id"]) for e in entries}
            for url in urls:
                if (url, image_id) not in known:
                    entries.append({"url": url, "image_id": image_id, "since": int(time.time()), "attempts": 1})
            self._write(entries)

    @contextmanager
    def _locked(self):
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.state_dir / "purge-pending.lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _read(self) -> list[dict]:
        try:
            return json.loads(self.pending_path.read_text())
        except FileNotFoundError:
            return []

    def _write(self, entries: list[dict]) -> None:
        tmp = self.pending_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries, indent=1))
        os.replace(tmp, self.pending_path)
