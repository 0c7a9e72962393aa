"""`python -m edge.run` (what `make serve` runs): the whole product on one machine, supervised.

    1. take the data dir's instance lock ({data_dir}/run/launcher.lock): a second launcher on the
       same data dir says so and exits; fill empty secrets from {data_dir}/secrets.json
    2. start the project's clamd when scanning is on (and stop it again on the way out)
    3. start the origin (`imagehost serve`, gunicorn) on a unix socket in the data dir, so the edge
       can only ever reach its own origin; wait until that origin answers
    4. render nginx into {data_dir}/edge/ and start it on IMAGEHOST_HOST:IMAGEHOST_PORT; announce
       "ready" once a request through the edge reaches the origin
    5. supervise: a child that dies is started again with backoff (0.5 s, doubling up to 30 s) while
       the other keeps running: nginx serves cached variants, stale ones included, while its origin
       is down. SIGINT/SIGTERM stop everything this launcher started.

IMAGEHOST_EDGE=0 runs the origin alone on IMAGEHOST_PORT, supervised the same way.
Purges go to this edge unless IMAGEHOST_PURGE_URLS says otherwise, and URLs the
origin prints or signs point at the edge unless IMAGEHOST_PUBLIC_BASE_URL is set.
`imagehost stop` stops a launcher (and its clamd) from another terminal.
"""
from __future__ import annotations

import ctypes
import fcntl
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

from edge.render import nginx_command, options_from_settings, render
from origin.config import ConfigError, Settings
from origin.errors import ImagehostError
from origin.security import dev_secrets

PR_SET_PDEATHSIG = 1
GRACE_SECONDS = 25.0
FIRST_START_SECONDS = 120.0  # a busy machine boots gunicorn workers slowly
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
STABLE_SECONDS = 60.0  # up this long: the next crash starts the backoff over


class AlreadyRunning(Exception):
    """Another launcher holds this data dir."""


def _die_with_parent() -> None:
    """Children get SIGTERM if the launcher itself is killed (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _say(message: str) -> None:
    print(f"imagehost: {message}", flush=True)


def prepare(environ=None) -> Settings:
    settings = Settings.from_env(environ)
    settings, filled = dev_secrets.ensure(settings)
    dev_secrets.export(settings, filled)
    if "api_keys" in filled:
        key = settings.api_keys.split(",")[0].partition(":")[0]
        reviewer = settings.reviewer_keys.split(",")[0].partition(":")[0]
        _say(f"development API key: {key}  reviewer key: {reviewer}  (kept in {settings.data_dir / 'secrets.json'})")
    return settings


@contextmanager
def instance_lock(settings: Settings):
    """Hold {data_dir}/run/launcher.lock (and write our pid beside it) for the launcher's life."""
    run_dir = settings.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / "launcher.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        pid = read_pid(settings)
        raise AlreadyRunning(f"another imagehost (pid {pid or '?'}) is running on {settings.data_dir}; "
                             "stop it first (imagehost stop) or set IMAGEHOST_DATA_DIR") from None
    pid_file = run_dir / "launcher.pid"
    pid_file.write_text(str(os.getpid()))
    try:
        yield
    finally:
        pid_file.unlink(missing_ok=True)
        handle.close()


def read_pid(settings: Settings) -> int | None:
    try:
        return int((settings.run_dir / "launcher.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def origin_environment(settings: Settings) -> dict:
    env = dict(os.environ)
    if settings.edge:
        binds = [f"unix:{settings.origin_socket}"]
        if settings.origin_port:
            binds.append(f"127.0.0.1:{settings.origin_port}")
        env["IMAGEHOST_BIND"] = ",".join(binds)
        env.setdefault("IMAGEHOST_PUBLIC_BASE_URL", settings.base_url)
        if not settings.purge_urls:
            env["IMAGEHOST_PURGE_URLS"] = f"http://127.0.0.1:{settings.port}"
    return env


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def answers(target: str, path: str = "/healthz", timeout: float = 5.0) -> bool:
    """Whether an HTTP server at "unix:/path" or "host:port" answers `path` with a 200."""
    if target.startswith("unix:"):
        conn = _UnixConnection(target[5:], timeout)
    else:
        host, _, port = target.rpartition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


@dataclass
class Child:
    name: str
    start: Callable[[], subprocess.Popen]
    stop_signal: int  # gunicorn stops gracefully on SIGTERM, nginx on SIGQUIT
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    next_start: float = 0.0
    restarts: int = 0

    def launch(self) -> subprocess.Popen:
        self.proc = self.start()
        self.started_at = time.monotonic()
        return self.proc

    def check(self, now: float) -> None:
        """Notice a dead child and schedule its restart; start it when its backoff is over."""
        if self.proc is not None and self.proc.poll() is not None:
            code = self.proc.returncode
            try:  # what it left behind (a killed gunicorn's workers hold its socket): gone before a restart
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.failures = 0 if now - self.started_at >= STABLE_SECONDS else self.failures + 1
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, self.failures - 1))
            _say(f"{self.name} exited with status {code}; starting it again in {delay:.1f} s"
                 + (" (the edge keeps serving what it has cached)" if self.name == "origin" else ""))
            self.proc, self.next_start = None, now + delay
        if self.proc is None and now >= self.next_start:
            self.launch()
            self.restarts += 1
            _say(f"{self.name} started again (pid {self.proc.pid})")


def stop(proc: subprocess.Popen | None, sig: int) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def supervise(children: list[Child], stopping: list) -> int:
    """Keep every child running until a signal comes (the caller stops them, the edge first)."""
    while not stopping:
        now = time.monotonic()
        for child in children:
            child.check(now)
        time.sleep(0.2)
    return 0


class Interrupted(Exception):
    """A stop signal came while starting."""


def wait_until_answering(child: Child, target: str, stopping: list, timeout: float = FIRST_START_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stopping:
            raise Interrupted()
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited with status {child.proc.returncode} before it answered")
        if answers(target):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{child.name} did not answer on {target} within {timeout:.0f} s")


def start_clamd(settings: Settings) -> bool:
    """The project's clamd for this data dir, when scanning is on; True if this launcher started it."""
    if not settings.scan:
        return False
    from origin.ports.scanner_clamd import ClamdScanner
    from origin.services.clamd import ensure_clamd, socket_path

    running = ClamdScanner(socket_path(settings), timeout=5).ping()
    os.environ["IMAGEHOST_CLAMD_SOCKET"] = ensure_clamd(settings)
    return not running


def run(settings: Settings, stopping: list) -> int:
    serve = [sys.executable, "-m", "origin.cli", "serve"]
    env = origin_environment(settings)
    origin = Child("origin", lambda: subprocess.Popen(serve, env=env, preexec_fn=_die_with_parent,
                                                      start_new_session=True), signal.SIGTERM)
    children = [origin]
    try:
        return start_and_supervise(settings, children, stopping)
    except Interrupted:
        return 0
    finally:
        for child in reversed(children):
            stop(child.proc, child.stop_signal)


def start_and_supervise(settings: Settings, children: list[Child], stopping: list) -> int:
    (origin,) = children
    if not settings.edge:
        _say("IMAGEHOST_EDGE=0: the origin alone, no edge cache")
        origin.launch()
        wait_until_answering(origin, f"{settings.host}:{settings.port}", stopping)
        _say(f"ready: origin on http://{settings.host}:{settings.port}/")
        return supervise(children, stopping)
    options = options_from_settings(settings)
    conf = render(settings, options)
    check = subprocess.run(nginx_command(conf, test=True), capture_output=True, text=True)
    if check.returncode != 0:
        print(f"imagehost: nginx refuses {conf}:\n{check.stderr}", file=sys.stderr)
        return 1
    origin.launch()
    wait_until_answering(origin, options.origin, stopping)
    nginx = Child("nginx", lambda: subprocess.Popen(nginx_command(conf), preexec_fn=_die_with_parent,
                                                    start_new_session=True), signal.SIGQUIT)
    children.append(nginx)
    nginx.launch()
    try:
        wait_until_answering(nginx, options.listen, stopping, timeout=30)
    except RuntimeError as exc:
        log = options.prefix / "logs" / "error.log"
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        raise RuntimeError(f"{exc}\n{tail}") from None
    _say(f"ready: edge on http://{options.listen}/ (nginx, cache in {options.prefix / 'cache'}), "
         f"origin on {options.origin}")
    return supervise(children, stopping)


def main() -> int:
    try:
        settings = prepare()
    except ConfigError as exc:
        print(f"imagehost: configuration error: {exc}", file=sys.stderr)
        return 2
    stopping: list = []
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    try:
        with instance_lock(settings):
            try:
                own_clamd = start_clamd(settings)
            except ImagehostError as exc:
                print(f"imagehost: clamd: {exc.message}", file=sys.stderr)
                return 1
            try:
                return run(settings, stopping)
            except RuntimeError as exc:
                print(f"imagehost: {exc}", file=sys.stderr)
                return 1
            finally:
                if own_clamd:
                    from origin.services.clamd import stop_clamd

                    stop_clamd(settings)
                    _say("clamd stopped")
    except AlreadyRunning as exc:
        print(f"imagehost: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
