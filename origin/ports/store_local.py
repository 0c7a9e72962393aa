"""Local-directory object store: the embedded default.

Writes go to a temporary file in the destination directory, are fsynced, then
`os.replace`d into place, so readers see either nothing or the whole object. Lazy
variants (keys.REGENERABLE) skip the fsync, a twentieth of a render's time: after a
power loss one may be left empty, and an empty variant reads as missing, so it is
simply rendered again.

Tiers: the root holds STANDARD; every other tier is a directory of its own
(`{root}-tiers/{TIER}` unless configured, e.g. a bigger, slower disk), holding the
same key paths. A read looks in the root first, then in each tier from warm to
cold; a transition (`set_tier`) only moves an object colder, with a rename on one
filesystem (atomic) or copy-then-delete across two, so a reader always finds it.
Only tiers that read at once exist here: nothing local needs a restore.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

from origin.errors import InvalidRequest, StoreUnavailable
from origin.keys import REGENERABLE, object_class
from origin.ports.store import ARCHIVED, INSTANT, TIERS, KeyMissing, Placement, Restore, StoredObject


def _write_atomic(path: Path, data: bytes, mtime: float | None = None, durable: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _files_under(base: Path):
    """Every file below `base`; a folder deleted while it is walked (a content reclaimed meanwhile)
    is passed over, where Path.rglob would raise."""
    for folder, _, names in os.walk(base):  # os.walk ignores folders that vanish
        for name in names:
            yield Path(folder) / name


def regenerable(key: str) -> bool:
    return object_class(key) in REGENERABLE


class LocalStore:
    def __init__(self, root: Path, tier_dirs: Mapping[str, Path] | None = None, placement: Placement | None = None):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.placement = placement or Placement()
        dirs = dict(tier_dirs or {})
        for tier in dirs:
            if tier not in TIERS or tier == "STANDARD":
                raise InvalidRequest(f"the local store has no tier {tier!r}")
            if tier in ARCHIVED:
                raise InvalidRequest(f"the local store cannot hold {tier}: it would need a restore")
        base = self.root.with_name(self.root.name + "-tiers")
        # (tier, directory), warm to cold: the order reads look in
        self.roots = ((TIERS[0], self.root),) + tuple(
            (tier, Path(dirs.get(tier) or base / tier).resolve()) for tier in INSTANT[1:])

    def _check(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise InvalidRequest(f"bad store key {key!r}")
        return key

    def _path(self, key: str) -> Path:
        return self.root / self._check(key)

    def _dir(self, tier: str) -> Path:
        for name, path in self.roots:
            if name == tier:
                return path
        raise InvalidRequest(f"the local store has no tier {tier!r}" +
                             (" (it would need a restore)" if tier in ARCHIVED else ""))

    def _located(self, key: str):
        """(tier, path) of every copy of `key`, warm to cold (normally one)."""
        self._check(key)
        return [(tier, base / key) for tier, base in self.roots if (base / key).is_file()]

    def get(self, key: str) -> bytes:
        self._check(key)
        for _, base in self.roots:
            try:
                with open(base / key, "rb") as fh:
                    data = fh.read()
                if not data and regenerable(key):
                    raise KeyMissing(f"no object {key} (an empty lazy variant: a write cut short)")
                return data
            except (FileNotFoundError, NotADirectoryError):
                continue  # moved colder meanwhile, or in another tier: look further
            except OSError as exc:
                raise StoreUnavailable(f"local store read failed: {exc.strerror}") from exc
        raise KeyMissing(f"no object {key}")

    def put(self, key: str, data: bytes, content_type: str = "") -> None:
        self._check(key)
        tier = self.placement.tier_for(key, len(data))
        try:
            _write_atomic(self._dir(tier) / key, data, durable=not regenerable(key))
            for other, base in self.roots:  # an overwrite leaves no older copy in another tier
                if other != tier:
                    try:
                        (base / key).unlink()
                    except (FileNotFoundError, NotADirectoryError):
                        pass
        except OSError as exc:
            raise StoreUnavailable(f"local store write failed: {exc.strerror}") from exc

    def exists(self, key: str) -> bool:
        return bool(self._located(key))

    def delete(self, key: str) -> None:
        for _, path in self._located(key):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StoreUnavailable(f"local store delete failed: {exc.strerror}") from exc

    def delete_prefix(self, prefix: str) -> int:
        self._check(prefix.rstrip("/"))
        count = 0
        for _, root in self.roots:
            base = root / prefix.rstrip("/")
            if base.is_dir():
                count += sum(1 for p in base.rglob("*") if p.is_file())
                shutil.rmtree(base, ignore_errors=True)
            elif base.is_file():
                base.unlink()
                count += 1
        return count

    def folders(self, top: str):
        self._check(top.rstrip("/"))
        seen: set[str] = set()
        for _, root in self.roots:
            base = root / top.rstrip("/")
            if base.is_dir():
                for entry in base.iterdir():
                    if entry.is_dir() and entry.name not in seen:
                        seen.add(entry.name)
                        yield entry.name

    def objects(self, prefix: str):
        self._check(prefix.rstrip("/"))
        seen: set[str] = set()
        for tier, root in self.roots:
            base = root / prefix.rstrip("/")
            if not base.is_dir():
                continue
            for path in _files_under(base):
                if not path.name.startswith(".tmp-"):  # not a write in progress
                    key = str(path.relative_to(root))
                    if key in seen:  # a copy across filesystems not finished yet: the warm one counts
                        continue
                    seen.add(key)
                    try:
                        stat = path.stat()
                    except FileNotFoundError:  # moved or deleted while listed
                        continue
                    yield StoredObject(key, stat.st_size, stat.st_mtime, tier)

    def set_tier(self, key: str, tier: str) -> None:
        target = self._dir(tier) / self._check(key)
        found = self._located(key)
        if not found:
            raise KeyMissing(f"no object {key}")
        current, path = found[0]
        if current == tier:
            return
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(path, target)  # one filesystem: atomic, and the age (mtime) moves with it
            except OSError as exc:
                if exc.errno != 18:  # EXDEV: another filesystem
                    raise
                stat = path.stat()
                _write_atomic(target, path.read_bytes(), mtime=stat.st_mtime)
                path.unlink()
        except FileNotFoundError:
            raise KeyMissing(f"no object {key}") from None
        except OSError as exc:
            raise StoreUnavailable(f"local store move failed: {exc.strerror}") from exc

    def restore(self, key: str, days: int = 1, speed: str = "Standard") -> Restore:
        found = self._located(key)
        if not found:
            raise KeyMissing(f"no object {key}")
        return Restore("not_archived", found[0][0])

    def ping(self) -> None:
        if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
            raise StoreUnavailable(f"local store {self.root} is not readable and writable")
