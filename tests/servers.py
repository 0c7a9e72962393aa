"""A real gunicorn serving the origin on a free loopback port."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@dataclass
class Origin:
    url: str
    data_dir: Path
    env: dict
    proc: subprocess.Popen

    def ingest(self, *paths: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "origin.cli", "ingest", *map(str, paths)],
            env=self.env, capture_output=True, text=True, cwd=ROOT, timeout=120,
        )


def start_origin(data_dir: Path, extra_env: dict | None = None, workers: int = 2) -> Origin:
    port = free_port()
    env = {
        **os.environ,
        "IMAGEHOST_PORT": str(port),
        "IMAGEHOST_DATA_DIR": str(data_dir),
        "IMAGEHOST_WORKERS": str(workers),
        "PROMETHEUS_MULTIPROC_DIR": str(data_dir / "metrics"),
        **(extra_env or {}),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "gunicorn.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:origin.gunicorn_conf", "origin.app:from_env()"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/healthz", proc=proc)
    except RuntimeError:
        proc.kill()
        raise RuntimeError((data_dir / "gunicorn.log").read_text()[-3000:])
    return Origin(url, data_dir, env, proc)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    server = start_origin(tmp_path_factory.mktemp("origin") / "var")
    yield server
    stop(server.proc)
