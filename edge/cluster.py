"""The production shape on one machine, as real processes on loopback (`make cluster`, the fault
tests and the fault drill share it; deploy/docker-compose.yml is the same shape for real):

    clients → nginx edge (cache) → origins ×2 (gunicorn, an upstream group: a dead one is skipped)
                                      ↓ catalog: PostgreSQL (a private instance)
                                      ↓ store: S3 (moto, reached through a path that can be cut)
    S3 events → SQS (moto) → workers ×2 (`imagehost worker`) → clamd

PostgreSQL runs as its own instance under the cluster's directory (initdb; as the `postgres` user
when started by root), so stopping it stops nobody else's database. moto keeps S3 in memory:
stopping it would lose the bucket, so the store's fault is a cut of the TCP path to it
(edge/tcpproxy.py), which is what an origin sees of a dead or partitioned S3 anyway.

    cluster = Cluster(root).start()
    cluster.kill("origin-1"); cluster.start_service("origin-1")
    cluster.stop_service("postgres"); cluster.start_service("postgres")
    cluster.cut_s3(); cluster.restore_s3()
    cluster.stop()
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from edge.render import EdgeOptions, nginx_command, render
from edge.run import answers
from edge.tcpproxy import TcpProxy
from origin.config import Settings

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql")
AWS_ENV = {"AWS_ACCESS_KEY_ID": "cluster", "AWS_SECRET_ACCESS_KEY": "cluster", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/nonexistent/aws-config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_tool(name: str) -> str:
    found = sorted(PG_BIN.glob(f"*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (Debian: postgresql)")
    return str(found[-1])


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict
    log: Path
    ready: Callable[[], bool]
    stop_signal: int = signal.SIGTERM
    user: str | None = None  # run as this user (PostgreSQL refuses root)
    pid_file: Path | None = None  # where the real server writes its pid, when it is not our child
    proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> None:
        if self.alive:
            return
        if self.proc is not None:
            reap_group(self.proc.pid)  # what a dead master left (its workers still hold its port)
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, user=self.user, start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            if self.ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready within {timeout:.0f} s:\n{self.tail()}")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    @property
    def alive(self) -> bool:
        return self.pid is not None

    def signal(self, sig: int) -> None:
        if self.alive:
            os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 30.0) -> None:
        if not self.alive:
            return
        self.signal(self.stop_signal)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        if self.alive:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@dataclass
class Cluster:
    root: Path
    origins: int = 2
    workers: int = 2
    worker_threads: int = 2
    scan: bool = True
    moderation: str = ""  # "" = the product's default model
    extra_env: dict = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    s3_proxy: TcpProxy | None = None

    def __post_init__(self):
        self.root = Path(self.root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.edge_port = free_port()
        self.edge_url = f"http://127.0.0.1:{self.edge_port}"
        self.api_key = f"ck-{secrets.token_urlsafe(12)}"
        self.reviewer_key = f"cr-{secrets.token_urlsafe(12)}"
        self.secrets_env = {
            "IMAGEHOST_API_KEYS": f"{self.api_key}:operator",
            "IMAGEHOST_REVIEWER_KEYS": f"{self.reviewer_key}:reviewer",
            "IMAGEHOST_SIGNING_KEYS": f"k1:{secrets.token_urlsafe(24)}",
            "IMAGEHOST_WEBHOOK_SECRET": secrets.token_urlsafe(24),
        }

    # --- the parts ---------------------------------------------------------------------------

    def _postgres(self) -> Service:
        # PostgreSQL needs a directory its user can reach: pytest's and most temp dirs are root's alone
        base = Path(tempfile.mkdtemp(prefix="imagehost-pg-"))
        self.pg_dir = base
        user = "postgres" if os.geteuid() == 0 else None
        if user:
            os.chown(base, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
        subprocess.run([pg_tool("initdb"), "-D", str(base / "data"), "-A", "trust", "-U", "postgres", "--no-sync",
                        "-E", "UTF8"], check=True, capture_output=True, user=user)
        port = free_port()
        self.catalog_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        argv = [pg_tool("postgres"), "-D", str(base / "data"), "-p", str(port), "-k", str(base),
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=400",
                "-c", "shared_buffers=64MB"]
        return Service("postgres", argv, {"PATH": os.environ.get("PATH", "")}, self.root / "postgres.log",
                       lambda: _pg_ready(self.catalog_url), stop_signal=signal.SIGINT, user=user)

    def _moto(self) -> Service:
        port = free_port()
        self.moto_url = f"http://127.0.0.1:{port}"
        return Service("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                       {**os.environ, **AWS_ENV}, self.root / "moto.log",
                       lambda: answers(f"127.0.0.1:{port}", "/moto-api/"))

    def env(self, data_dir: Path, **extra) -> dict:
        """The environment every origin, worker and command of this cluster runs with."""
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("IMAGEHOST_")}, **AWS_ENV, **self.secrets_env,
            "IMAGEHOST_STORE": "s3", "IMAGEHOST_S3_BUCKET": "imagehost", "IMAGEHOST_S3_ENDPOINT_URL": self.s3_url,
            "IMAGEHOST_SQS_ENDPOINT_URL": self.moto_url, "IMAGEHOST_QUEUE": "sqs",
            "IMAGEHOST_CATALOG_URL": self.catalog_url, "IMAGEHOST_SCAN": "1" if self.scan else "0",
            "IMAGEHOST_PUBLIC_BASE_URL": self.edge_url, "IMAGEHOST_PURGE_URLS": self.edge_url,
            "IMAGEHOST_JOB_LEASE_SECONDS": "30", "IMAGEHOST_DATA_DIR": str(data_dir),
            "PROMETHEUS_MULTIPROC_DIR": str(data_dir / "metrics"),
        }
        if self.scan:
            env["IMAGEHOST_CLAMD_SOCKET"] = self.clamd_socket
        if self.moderation:
            env["IMAGEHOST_MODERATION"] = self.moderation
        if getattr(self, "queue_url", ""):
            env["IMAGEHOST_SQS_QUEUE_URL"] = self.queue_url
        env.update(self.extra_env)
        env.update(extra)
        return env

    def _origin(self, n: int) -> Service:
        port = free_port()
        data_dir = self.root / f"origin-{n}"
        data_dir.mkdir(exist_ok=True)
        env = self.env(data_dir, IMAGEHOST_BIND=f"127.0.0.1:{port}", IMAGEHOST_WORKERS="2",
                       IMAGEHOST_WORKER_THREADS="0")
        return Service(f"origin-{n}", [sys.executable, "-m", "origin.cli", "serve"], env, data_dir / "origin.log",
                       lambda: answers(f"127.0.0.1:{port}"))

    def _worker(self, n: int) -> Service:
        data_dir = self.root / f"worker-{n}"
        data_dir.mkdir(exist_ok=True)
        log = data_dir / "worker.log"
        env = self.env(data_dir, IMAGEHOST_WORKER_THREADS=str(self.worker_threads))
        return Service(f"worker-{n}", [sys.executable, "-m", "origin.cli", "worker"], env, log,
                       lambda: "worker running" in (log.read_text(errors="replace") if log.exists() else ""),
                       stop_signal=signal.SIGTERM)

    def _edge(self) -> Service:
        origins = ",".join(self.services[f"origin-{n}"].env["IMAGEHOST_BIND"] for n in range(1, self.origins + 1))
        options = EdgeOptions(prefix=self.root / "edge", listen=f"127.0.0.1:{self.edge_port}", origin=origins,
                              workers="1")
        conf = render(Settings.from_env(self.env(self.root / "edge")), options)
        return Service("edge", nginx_command(conf), {"PATH": os.environ.get("PATH", "")}, self.root / "edge.log",
                       lambda: answers(f"127.0.0.1:{self.edge_port}"), stop_signal=signal.SIGQUIT)

    # --- the whole ---------------------------------------------------------------------------

    def start(self) -> "Cluster":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        pg = self.services["postgres"] = self._postgres()
        pg.start()
        moto = self.services["moto"] = self._moto()
        moto.start()
        target = urlsplit(self.moto_url)
        self.s3_proxy = TcpProxy(("127.0.0.1", 0), (target.hostname, target.port)).start()
        self.s3_url = self.s3_proxy.url
        if self.scan:
            from origin.services.clamd import ensure_clamd

            self.clamd_settings = Settings(data_dir=self.root / "clamd")
            self.clamd_socket = ensure_clamd(self.clamd_settings)
        setup = subprocess.run([sys.executable, "-m", "origin.cli", "setup"], env=self.env(self.root / "setup"),
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
        if setup.returncode != 0:
            raise RuntimeError(f"imagehost setup failed:\n{setup.stderr[-3000:]}")
        self.queue_url = json.loads(setup.stdout)["queue_url"]
        for n in range(1, self.origins + 1):
            self.services[f"origin-{n}"] = self._origin(n)
        for n in range(1, self.workers + 1):
            self.services[f"worker-{n}"] = self._worker(n)
        for name, service in self.services.items():
            if name.startswith(("origin-", "worker-")):
                service.start()
        self.services["edge"] = self._edge()
        self.services["edge"].start()

    def stop(self) -> None:
        for name in ("edge", *[n for n in self.services if n.startswith(("worker-", "origin-"))], "moto", "postgres"):
            if name in self.services:
                self.services[name].stop()
        if self.s3_proxy is not None:
            self.s3_proxy.cut()
        if self.scan and hasattr(self, "clamd_settings"):
            from origin.services.clamd import stop_clamd

            stop_clamd(self.clamd_settings)
        if hasattr(self, "pg_dir"):
            shutil.rmtree(self.pg_dir, ignore_errors=True)

    # --- faults ------------------------------------------------------------------------------

    def start_service(self, name: str) -> None:
        self.services[name].start()

    def stop_service(self, name: str) -> None:
        self.services[name].stop()

    def kill(self, name: str) -> None:
        self.services[name].kill()

    def cut_s3(self) -> None:
        self.s3_proxy.cut()

    def restore_s3(self) -> None:
        self.s3_proxy.restore()

    def stop_clamd(self) -> None:
        from origin.services.clamd import stop_clamd

        stop_clamd(self.clamd_settings)

    def start_clamd(self) -> None:
        from origin.services.clamd import ensure_clamd

        ensure_clamd(self.clamd_settings)

    def ingest(self, *paths: Path, timeout: float = 600) -> list[dict]:
        """`imagehost ingest` against this cluster (the trusted bulk import): one dict per file."""
        done = subprocess.run([sys.executable, "-m", "origin.cli", "ingest", *map(str, paths)],
                              env=self.env(self.root / "ingest"), cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"imagehost ingest failed:\n{done.stderr[-3000:]}")
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def reap_group(pgid: int) -> None:
    """SIGKILL what is left of a process group (each service runs in a session of its own), as a
    service manager does before it starts a unit again."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _pg_ready(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=1):
            return True
    except psycopg.OperationalError:
        return False


def main() -> int:
    """`make cluster`: run the fleet shape until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(description="the production shape as processes on loopback")
    parser.add_argument("--dir", default="var/cluster", help="where the cluster keeps its files")
    parser.add_argument("--no-scan", action="store_true", help="no clamd")
    args = parser.parse_args()
    stopping: list = []
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    cluster = Cluster(Path(args.dir), scan=not args.no_scan)
    print("imagehost: starting PostgreSQL, moto (S3 + SQS), clamd, 2 origins, 2 workers, the edge …", flush=True)
    cluster.start()
    print(f"imagehost: ready: edge on {cluster.edge_url}/  (API key {cluster.api_key}, reviewer key "
          f"{cluster.reviewer_key})", flush=True)
    for name, service in cluster.services.items():
        print(f"  {name:10} pid {service.pid}  log {service.log}", flush=True)
    print(f"  S3 {cluster.s3_url} (→ {cluster.moto_url}), SQS {cluster.moto_url}, catalog {cluster.catalog_url}",
          flush=True)
    try:
        while not stopping:
            time.sleep(0.5)
    finally:
        cluster.stop()
        print("imagehost: cluster stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
