"""Local-directory object store: the embedded default.

Writes go to a temporary file in the destination directory, are fsynced, then
`os.replace`d into place, so readers see either nothing or the whole object.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from origin.errors import InvalidRequest, StoreUnavailable
from origin.ports.store import KeyMissing, StoredObject


class LocalStore:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise InvalidRequest(f"bad store key {key!r}")
        return self.root / key

    def get(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as fh:
                return fh.read()
        except (FileNotFoundError, NotADirectoryError):
            raise KeyMissing(f"no object {key}") from None
        except OSError as exc:
            raise StoreUnavailable(f"local store read failed: {exc.strerror}") from exc

    def put(self, key: str, data: bytes, content_type: str = "") -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                raise
        except OSError as exc:
            raise StoreUnavailable(f"local store write failed: {exc.strerror}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreUnavailable(f"local store delete failed: {exc.strerror}") from exc

    def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix.rstrip("/"))
        if base.is_dir():
            count = sum(1 for p in base.rglob("*") if p.is_file())
            shutil.rmtree(base, ignore_errors=True)
            return count
        if base.is_file():
            base.unlink()
            return 1
        return 0

    def folders(self, top: str):
        base = self._path(top.rstrip("/"))
        if base.is_dir():
            yield from (entry.name for entry in base.iterdir() if entry.is_dir())

    def objects(self, prefix: str):
        base = self._path(prefix.rstrip("/"))
        if base.is_dir():
            for path in base.rglob("*"):
                if path.is_file() and not path.name.startswith(".tmp-"):  # not a write in progress
                    stat = path.stat()
                    yield StoredObject(str(path.relative_to(self.root)), stat.st_size, stat.st_mtime)

    def ping(self) -> None:
        if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
            raise StoreUnavailable(f"local store {self.root} is not readable and writable")
