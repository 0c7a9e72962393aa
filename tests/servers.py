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
            requests.get(url, timeout=5)
            return
        except requests.RequestException:
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


def start_origin(data_dir: Path, extra_env: dict | None = None, workers: int = 2, port: int = 0) -> Origin:
    port = port or free_port()
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
        wait_for(url + "/healthz", timeout=60, proc=proc)  # a busy machine boots workers slowly
    except RuntimeError:
        stop(proc)
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


# --- the edge: nginx (edge/render.py) in front of a real origin; tests/test_edge*.py ---

@dataclass
class Edge:
    url: str
    prefix: Path
    proc: subprocess.Popen
    plain_url: str = ""  # the same cache with no hotlink checks (EdgeOptions.plain_listen)

    def access_log(self) -> str:
        path = self.prefix / "logs" / "access.log"
        return path.read_text() if path.exists() else ""


def wait_for_port(port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def start_edge(settings, origin_port: int, prefix: Path, *, port: int | None = None, plain: bool = False,
               edge_ttl: int = 0, workers: str = "1", max_body: int = 0) -> Edge:
    """nginx rendered from `settings` (use Settings.from_env(origin.env) to mirror an origin)."""
    from edge.render import EdgeOptions, nginx_command, render

    port = port or free_port()
    plain_port = free_port() if plain else 0
    options = EdgeOptions(prefix=prefix, listen=f"127.0.0.1:{port}", origin=f"127.0.0.1:{origin_port}",
                          plain_listen=f"127.0.0.1:{plain_port}" if plain else "", edge_ttl=edge_ttl, workers=workers,
                          max_body=max_body)
    conf = render(settings, options)
    log = open(prefix / "logs" / "nginx.out", "ab")
    proc = subprocess.Popen(nginx_command(conf), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc=proc)
    except RuntimeError:
        proc.kill()
        raise RuntimeError((prefix / "logs" / "error.log").read_text()[-3000:])
    return Edge(f"http://127.0.0.1:{port}", prefix, proc, f"http://127.0.0.1:{plain_port}" if plain else "")


EDGE_ORIGIN_ENV = {"IMAGEHOST_WORKER_THREADS": "0", "IMAGEHOST_SCAN": "0", "IMAGEHOST_MODERATION": "off"}


def start_edge_origin(data_dir: Path, extra_env: dict | None = None, workers: int = 2, port: int = 0) -> Origin:
    """An origin for the edge tests: delivery only (no pipeline threads, scan or model)."""
    return start_origin(data_dir, {**EDGE_ORIGIN_ENV, **(extra_env or {})}, workers, port)
