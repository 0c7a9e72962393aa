"""The `imagehost` command: serve, ingest, worker, setup, compact, stop."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from origin.config import ConfigError, Settings
from origin.errors import ImagehostError


def prepare(settings: Settings, runs_jobs: bool = True) -> Settings:
    """Fill empty secrets (generated once into the data dir) and, when this process runs jobs with
    scanning on, start the project's clamd (a clamd at host:port is an operator's: not started, and
    a worker that finds it down starts anyway: its jobs wait for it)."""
    from origin.security import dev_secrets

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings, filled = dev_secrets.ensure(settings)
    dev_secrets.export(settings, filled)
    if "api_keys" in filled:
        key = settings.api_keys.split(",")[0].split(":")[0]
        reviewer = settings.reviewer_keys.split(",")[0].split(":")[0]
        print(f"imagehost: development API key: {key}", flush=True)
        print(f"imagehost: development reviewer key: {reviewer}", flush=True)
        print(f"imagehost: (stored in {settings.data_dir / 'secrets.json'}; set IMAGEHOST_API_KEYS in production)",
              flush=True)
    if settings.scan and runs_jobs:
        from origin.ports.scanner_clamd import ClamdScanner, tcp_address
        from origin.services.clamd import ensure_clamd, socket_path

        running = ClamdScanner(socket_path(settings), timeout=5).ping()
        if not running and tcp_address(socket_path(settings)):
            print(f"imagehost: clamd at {socket_path(settings)} does not answer yet; jobs wait for it", flush=True)
            return settings
        os.environ["IMAGEHOST_CLAMD_SOCKET"] = str(ensure_clamd(settings))
        if not running:
            print(f"imagehost: started clamd for {settings.data_dir}; it keeps running after this command "
                  "ends (`imagehost stop` stops it)", flush=True)
        settings = Settings.from_env()
    return settings


def cmd_serve(settings: Settings, args) -> int:
    # gunicorn's master then creates the schemas once (origin/gunicorn_conf.py)
    settings = prepare(settings, runs_jobs=settings.queue == "local" and settings.worker_threads > 0)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(settings.data_dir.resolve() / "metrics"))
    argv = ["gunicorn", "-c", "python:origin.gunicorn_conf", "origin.app:from_env()"]
    bind = os.environ.get("IMAGEHOST_BIND") or f"{settings.host}:{settings.port}"
    print(f"imagehost: origin on {bind} (data in {settings.data_dir})", flush=True)
    os.execvp(sys.executable, [sys.executable, "-m", *argv])
    return 1  # not reached


def cmd_stop(settings: Settings, args) -> int:
    """Stop what runs on this data dir: the launcher (`make serve`: edge and origin) and its clamd."""
    import signal
    import time

    from origin.services.clamd import stop_clamd

    stopped = []
    try:
        pid = int((settings.run_dir / "launcher.pid").read_text().strip())
    except (OSError, ValueError):
        pid = None
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pid = None
    if pid is not None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and \
                (settings.run_dir / "launcher.pid").exists():
            time.sleep(0.1)
        stopped.append(f"launcher (pid {pid})")
    if stop_clamd(settings):
        stopped.append("clamd")
    print(f"imagehost: stopped {', '.join(stopped)}" if stopped else
          f"imagehost: nothing was running on {settings.data_dir}", flush=True)
    return 0


def cmd_worker(settings: Settings, args) -> int:
    """Consume the queue in this process until SIGINT/SIGTERM."""
    import logging
    import signal
    import threading

    from origin.app import open_ports, start_workers

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = prepare(settings)
    stop_requested = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_requested.set())
    from origin.pipeline.render import configure_libvips

    configure_libvips()
    stop = start_workers(settings, open_ports(settings))
    print(f"imagehost: worker running ({settings.worker_threads} threads, queue {settings.queue})", flush=True)
    stop_requested.wait()
    stop.set()
    return 0


def cmd_setup(settings: Settings, args) -> int:
    """Create the bucket, the SQS queue and the bucket's ObjectCreated notification (S3 deployments)."""
    from origin.ports.setup_s3 import setup

    if settings.store != "s3":
        print("imagehost: setup is for IMAGEHOST_STORE=s3; the local store needs none", file=sys.stderr)
        return 2
    print(json.dumps(setup(settings)), flush=True)
    return 0


def cmd_ingest(settings: Settings, args) -> int:
    from origin.ingest.originals import ingest
    from origin.ingest.validate import Limits
    from origin.metrics import build_metrics
    from origin.wiring import open_catalog, open_store

    store = open_store(settings)
    catalog = open_catalog(settings.catalog)
    metrics = build_metrics()  # adds to /metrics when PROMETHEUS_MULTIPROC_DIR is shared with the origin
    failures = 0
    for name in args.paths:
        path = Path(name)
        try:
            data = path.read_bytes()
            record = ingest(data, store, catalog, limits=Limits.from_settings(settings), filename=path.name,
                            metrics=metrics, intermediate_sizes=settings.intermediate_sizes)
        except OSError as exc:
            print(f"imagehost: {name}: cannot read: {exc.strerror}", file=sys.stderr)
            failures += 1
            continue
        except ImagehostError as exc:
            print(f"imagehost: {name}: refused: {exc.message}", file=sys.stderr)
            failures += 1
            continue
        url = f"{settings.base_url}/images/{record.id}/original"
        print(json.dumps({"id": record.id, "url": url, "file": name}), flush=True)
    catalog.close()
    return 1 if failures else 0


def cmd_compact(settings: Settings, args) -> int:
    """Collapse duplicates found late and reclaim storage (origin/ingest/compact.py); one JSON line."""
    import dataclasses
    import logging

    from origin.ingest import compact
    from origin.metrics import build_metrics
    from origin.wiring import open_compactor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ctx = open_compactor(settings, build_metrics())
    try:
        report = compact.compact(ctx)
    except ImagehostError as exc:
        print(f"imagehost: compact: {exc.message}", file=sys.stderr)
        return 1
    finally:
        ctx.catalog.close()
    print(json.dumps(dataclasses.asdict(report)), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagehost", description="a self-hosted image host")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the origin under gunicorn on the configured port")
    sub.add_parser("worker", help="consume the upload queue: validate, scan, moderate, process")
    sub.add_parser("setup", help="create the S3 bucket, SQS queue and bucket notification")
    ingest = sub.add_parser("ingest", help="store image files as new images; one JSON line per file")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    sub.add_parser("stop", help="stop what runs on this data dir: make serve's edge and origin, and clamd")
    sub.add_parser("compact", help="collapse duplicates found late, reclaim storage; safe to kill and rerun")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"imagehost: configuration error: {exc}", file=sys.stderr)
        return 2
    commands = {"serve": cmd_serve, "ingest": cmd_ingest, "worker": cmd_worker, "setup": cmd_setup,
                "compact": cmd_compact, "stop": cmd_stop}
    return commands[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
