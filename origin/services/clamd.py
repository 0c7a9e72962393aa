"""Run the project's own clamd under data_dir: `ensure_clamd` and `stop_clamd`.

    {data_dir}/clamd/clamd.conf   rendered from origin/clamav/clamd.conf.in
    {data_dir}/clamd/db/          the project's signatures (origin/clamav/imagehost.*),
                                  plus whatever official databases an operator drops in
    {data_dir}/clamd/clamd.sock   the socket (unless IMAGEHOST_CLAMD_SOCKET names another)
    {data_dir}/clamd/clamd.log    clamd's own log; clamd.out its stdout/stderr

`ensure_clamd` is idempotent and safe to call from several processes at once
(`make serve`, the workers, the test session): a lock file serialises the
check-then-start, and a clamd that already answers PING is used as it is.
A host:port address is never started here: it belongs to an operator.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from string import Template

from origin.config import ConfigError, Settings
from origin.ports.scanner import ScannerUnavailable, default_socket
from origin.ports.scanner_clamd import ClamdScanner, tcp_address

SOURCE = Path(__file__).resolve().parent.parent / "clamav"
SIGNATURE_SUFFIXES = {".ndb", ".ldb", ".hdb", ".hsb", ".mdb", ".msb", ".fp", ".sfp", ".ign2", ".cdb"}
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with the terminating NUL

_children: dict[str, subprocess.Popen] = {}  # socket -> clamd this process started (to reap it)


def clamd_dir(settings: Settings) -> Path:
    return Path(settings.data_dir).resolve() / "clamd"


def socket_path(settings: Settings) -> str:
    """Where clamd listens: IMAGEHOST_CLAMD_SOCKET, else {data_dir}/clamd/clamd.sock."""
    return default_socket(settings)


def clamd_binary() -> str:
    found = shutil.which("clamd") or ("/usr/sbin/clamd" if os.access("/usr/sbin/clamd", os.X_OK) else None)
    if not found:
        raise ScannerUnavailable("clamd is not installed (Debian: apt-get install clamav-daemon)")
    return found


def signature_files() -> list[Path]:
    return sorted(p for p in SOURCE.iterdir() if p.suffix in SIGNATURE_SUFFIXES)


def prepare(settings: Settings) -> Path:
    """Render clamd.conf and refresh the project's signatures under {data_dir}/clamd; return the conf path."""
    base = clamd_dir(settings)
    sock = socket_path(settings)
    if len(sock.encode()) > MAX_SOCKET_PATH:
        raise ConfigError(f"clamd socket path is longer than {MAX_SOCKET_PATH} bytes: {sock}")
    db_dir, tmp_dir = base / "db", base / "tmp"
    for folder in (base, db_dir, tmp_dir):
        folder.mkdir(parents=True, exist_ok=True)
    wanted = {p.name for p in signature_files()}
    for old in db_dir.glob("imagehost*"):
        if old.name not in wanted:
            old.unlink()
    for src in signature_files():
        _write_atomic(db_dir / src.name, src.read_bytes())
    stream_max = settings.max_upload_bytes + (1 << 20)
    conf = Template((SOURCE / "clamd.conf.in").read_text()).substitute(
        socket=sock,
        pid_file=base / "clamd.pid",
        db_dir=db_dir,
        tmp_dir=tmp_dir,
        log_file=base / "clamd.log",
        stream_max=stream_max,
        scan_max=max(4 * stream_max, 100 << 20),
    )
    path = base / "clamd.conf"
    _write_atomic(path, conf.encode())
    return path


def ensure_clamd(settings: Settings, timeout: float = 60.0) -> str:
    """Return the socket of a clamd that answers PING, starting the project's own if none does."""
    sock = socket_path(settings)
    if ClamdScanner(sock, timeout=5).ping():
        return sock
    if tcp_address(sock):
        raise ScannerUnavailable(f"clamd at {sock} does not answer (a TCP clamd is not started by imagehost)")
    with _lock(clamd_dir(settings)):
        if ClamdScanner(sock, timeout=5).ping():  # another process started it meanwhile
            return sock
        conf = prepare(settings)
        out = open(clamd_dir(settings) / "clamd.out", "ab")
        try:
            proc = subprocess.Popen(
                [clamd_binary(), "-c", str(conf)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives `make serve`'s terminal and Ctrl-C
            )
        finally:
            out.close()
        _children[sock] = proc
        _wait_for_pong(sock, proc, timeout, clamd_dir(settings))
    return sock


def stop_clamd(settings: Settings, timeout: float = 15.0) -> bool:
    """Stop the clamd started for these settings; False if none was running."""
    sock = socket_path(settings)
    pid = _read_pid(clamd_dir(settings) / "clamd.pid")
    child = _children.pop(sock, None)
    if pid is None and child is not None and child.poll() is None:
        pid = child.pid
    if pid is None or not _is_clamd(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and child.pid == pid:
            if child.poll() is not None:
                return True
        elif not _is_clamd(pid):
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    if child is not None:
        child.wait(5)
    return True


def _wait_for_pong(sock: str, proc: subprocess.Popen, timeout: float, base: Path) -> None:
    scanner = ClamdScanner(sock, timeout=5, connect_timeout=1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ScannerUnavailable(f"clamd exited with {proc.returncode} while starting:\n{_tail(base)}")
        if scanner.ping():
            return
        time.sleep(0.05)
    proc.kill()
    proc.wait(5)
    raise ScannerUnavailable(f"clamd did not answer PING on {sock} within {timeout:.0f} s:\n{_tail(base)}")


def _tail(base: Path) -> str:
    text = ""
    for name in ("clamd.out", "clamd.log"):
        path = base / name
        if path.exists():
            text += path.read_text(errors="replace")[-2000:]
    return text


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_clamd(pid: int) -> bool:
    """The pid is alive and is a clamd (not a recycled pid, not a zombie)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and b"clamd" in cmdline.split(b"\0")[0]


@contextmanager
def _lock(base: Path):
    base.mkdir(parents=True, exist_ok=True)
    with open(base / "launch.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
