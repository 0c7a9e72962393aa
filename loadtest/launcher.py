"""`make serve`'s launcher (python -m edge.run: nginx + gunicorn over a unix socket, clamd) for the benchmarks.

    with Launched(data_dir, {"IMAGEHOST_API_KEYS": ...}) as stack:
        requests.get(stack.url + "/healthz")

A free loopback port; the launcher's own output in {data_dir}.launcher.out; SIGTERM on the
way out (it stops nginx, gunicorn and its clamd), SIGKILL to the group if it lingers.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = "imagehost: ready:"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Launched:
    def __init__(self, data_dir: Path, env: dict | None = None, timeout: float = 180):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEHOST_")}
        self.env.update({"IMAGEHOST_PORT": str(self.port), "IMAGEHOST_DATA_DIR": str(self.data_dir), **(env or {})})
        self.timeout = timeout
        self.out = self.data_dir.parent / f"{self.data_dir.name}.launcher.out"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Launched":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.out, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "edge.run"], env=self.env, cwd=ROOT, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.timeout
        while READY not in self.out.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"the launcher did not get ready:\n{self.out.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def worker_pids(self) -> list[int]:
        """gunicorn's worker processes (for CPU accounting and py-spy)."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                command = stat.read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "gunicorn" in command and str(self.data_dir) in self._environ(stat.parent):
                found.append(int(stat.parent.name))
        return found

    @staticmethod
    def _environ(proc_dir: Path) -> str:
        try:
            return (proc_dir / "environ").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return ""
