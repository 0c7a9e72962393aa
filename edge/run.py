"""`python -m edge.run` (what `make serve` runs): the origin behind its nginx edge.

    1. fill empty secrets from {data_dir}/secrets.json (origin/security/dev_secrets.py)
       and hand them to the children through the environment
    2. IMAGEHOST_EDGE=0: run `imagehost serve` alone on IMAGEHOST_PORT (development)
    3. else render nginx into {data_dir}/edge/, start gunicorn (`imagehost serve`) on
       127.0.0.1:IMAGEHOST_ORIGIN_PORT and nginx on IMAGEHOST_HOST:IMAGEHOST_PORT,
       supervise both: when one exits, stop the other; SIGINT/SIGTERM stop both.

Purges go to this edge unless IMAGEHOST_PURGE_URLS says otherwise, and URLs the
origin prints or signs point at the edge unless IMAGEHOST_PUBLIC_BASE_URL is set.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

from edge.render import nginx_command, options_from_settings, render
from origin.config import ConfigError, Settings
from origin.security import dev_secrets

PR_SET_PDEATHSIG = 1
GRACE_SECONDS = 25.0


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


def origin_environment(settings: Settings) -> dict:
    env = dict(os.environ)
    env["IMAGEHOST_PORT"] = str(settings.origin_port)
    env["IMAGEHOST_BIND"] = f"127.0.0.1:{settings.origin_port}"
    env.setdefault("IMAGEHOST_PUBLIC_BASE_URL", settings.base_url)
    if not settings.purge_urls:
        env["IMAGEHOST_PURGE_URLS"] = f"http://127.0.0.1:{settings.port}"
    return env


def stop(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def supervise(children: dict[str, tuple[subprocess.Popen, int]]) -> int:
    """Wait until a child exits or a signal comes; then stop every child with its own stop signal."""
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    status = 0
    while not stopping:
        exited = [(name, proc.returncode) for name, (proc, _) in children.items() if proc.poll() is not None]
        if exited:
            name, code = exited[0]
            _say(f"{name} exited with status {code}; stopping the rest")
            status = code or 1
            break
        time.sleep(0.2)
    for proc, sig in children.values():
        stop(proc, sig)
    return status


def main() -> int:
    try:
        settings = prepare()
    except ConfigError as exc:
        print(f"imagehost: configuration error: {exc}", file=sys.stderr)
        return 2
    serve = [sys.executable, "-m", "origin.cli", "serve"]
    if not settings.edge:
        _say("IMAGEHOST_EDGE=0: the origin alone, no edge cache")
        os.execv(sys.executable, serve)
    options = options_from_settings(settings)
    conf = render(settings, options)
    check = subprocess.run(nginx_command(conf, test=True), capture_output=True, text=True)
    if check.returncode != 0:
        print(f"imagehost: nginx refuses {conf}:\n{check.stderr}", file=sys.stderr)
        return 1
    origin = subprocess.Popen(serve, env=origin_environment(settings), preexec_fn=_die_with_parent,
                              start_new_session=True)
    nginx = subprocess.Popen(nginx_command(conf), preexec_fn=_die_with_parent, start_new_session=True)
    _say(f"edge on http://{options.listen}/ (nginx, cache in {options.prefix / 'cache'}), "
         f"origin on http://{options.origin}/")
    # gunicorn stops gracefully on SIGTERM, nginx on SIGQUIT
    return supervise({"origin": (origin, signal.SIGTERM), "nginx": (nginx, signal.SIGQUIT)})


if __name__ == "__main__":
    sys.exit(main())
