"""gunicorn settings for the origin, derived from IMAGEHOST_* (used by `imagehost serve` and the Dockerfile).

    gunicorn -c python:origin.gunicorn_conf 'origin.app:from_env()'

gthread workers: libvips releases the GIL while it renders, so a worker's threads
render in parallel up to IMAGEHOST_RENDER_CONCURRENCY, and keep-alive works.
"""
import os
import shutil
import tempfile

from origin.config import Settings

_settings = Settings.from_env()

# IMAGEHOST_BIND: what the launcher (edge/run.py) asks for, e.g. "unix:/…/origin.sock,127.0.0.1:8081"
bind = (os.environ.get("IMAGEHOST_BIND") or f"{_settings.host}:{_settings.port}").split(",")
workers = _settings.workers or os.cpu_count() or 1
threads = _settings.threads
worker_class = "gthread"
keepalive = 15
timeout = 60
graceful_timeout = 20
accesslog = os.environ.get("IMAGEHOST_ACCESS_LOG") or None
errorlog = "-"
loglevel = "info"
proc_name = "imagehost-origin"
# gunicorn >= 24 opens a control socket at one path per user ($HOME/.gunicorn):
# several origins on one machine (tests, edges) would fight over it, and nothing here uses it
control_socket_disable = True

# /metrics adds up every worker's figures from files in this directory
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="imagehost-metrics-")
shutil.rmtree(_metrics_dir, ignore_errors=True)
os.makedirs(_metrics_dir, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server):
    """In the master, before any worker forks: the store root and the schemas, once."""
    from origin.wiring import prepare_backends  # ports only: libvips is not loaded before the fork

    for problem in prepare_backends(_settings):
        server.log.warning("not reachable at start (workers start anyway; /readyz reports it): %s", problem)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
