"""The `imagehost` command: serve, ingest, worker, setup, compact, lifecycle, cost, stop, and the
operators' images, delete, approve, reject, moderation-eval (their work lives in origin/admin/)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from origin.config import ConfigError, Settings
from origin.errors import ImagehostError
from origin.ports.catalog import STATES, MaintenanceBusy

BUSY = 75  # EX_TEMPFAIL: another maintenance run holds the guard


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

    from origin import logs
    from origin.app import open_ports, start_workers

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logs.configure()  # imagehost's own lines (one per job step) as JSON
    settings = prepare(settings)
    stop_requested = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_requested.set())
    from origin.pipeline.render import configure_libvips, threads_per_render

    configure_libvips(threads_per_render(settings.vips_threads, settings.worker_threads))
    stop = start_workers(settings, open_ports(settings))
    print(f"imagehost: worker running ({settings.worker_threads} threads, queue {settings.queue})", flush=True)
    stop_requested.wait()
    stop.set()
    return 0


def cmd_setup(settings: Settings, args) -> int:
    """Create the bucket, the SQS queue and the bucket's ObjectCreated notification (S3 deployments)."""
    from origin.lifecycle.rules import Rules
    from origin.ports.setup_s3 import setup

    if settings.store != "s3":
        print("imagehost: setup is for IMAGEHOST_STORE=s3; the local store needs none", file=sys.stderr)
        return 2
    print(json.dumps(setup(settings, Rules.from_settings(settings))), flush=True)
    return 0


def cmd_ingest(settings: Settings, args) -> int:
    from origin.admin import ingest

    return ingest.run(settings, args)


def cmd_admin(settings: Settings, args) -> int:
    """images / delete / approve / reject (origin/admin/images.py)."""
    from origin.admin import images

    run = {"images": images.list_images, "delete": images.delete, "approve": images.decide,
           "reject": images.decide}[args.command]
    return run(settings, args)


def cmd_moderation_eval(settings: Settings, args) -> int:
    from origin.admin import moderation_eval

    return moderation_eval.run(settings, args)


def _maintenance(name: str, ctx, work) -> int:
    """Run a maintenance command's `work(ctx)` under its guard; one JSON line, or why not."""
    import dataclasses

    try:
        report = work(ctx)
    except MaintenanceBusy as exc:
        print(f"imagehost: {name}: {exc.message}; try again when it is done", file=sys.stderr)
        return BUSY
    except ImagehostError as exc:
        print(f"imagehost: {name}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        ctx.catalog.close()
    print(json.dumps(dataclasses.asdict(report)), flush=True)
    return 0


def cmd_compact(settings: Settings, args) -> int:
    """Collapse duplicates found late and reclaim storage (origin/ingest/compact.py); one JSON line."""
    import logging

    from origin.ingest import compact
    from origin.metrics import build_metrics
    from origin.wiring import open_compactor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return _maintenance("compact", open_compactor(settings, build_metrics()), compact.compact)


def _maintenance_metrics(settings: Settings):
    """Metrics written where the origin's /metrics reads them (its data dir), unless told otherwise."""
    from origin.metrics import build_metrics

    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(settings.data_dir.resolve() / "metrics"))
    return build_metrics()


def cmd_lifecycle(settings: Settings, args) -> int:
    """Transitions (local store), usage reconciliation and eviction (origin/lifecycle/run.py); one JSON line."""
    import logging

    from origin.lifecycle import run
    from origin.wiring import open_lifecycle

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return _maintenance("lifecycle", open_lifecycle(settings, _maintenance_metrics(settings)),
                        lambda ctx: run.run(ctx, walk_store=not args.no_walk))


def cmd_cost(settings: Settings, args) -> int:
    """Bytes, objects and monthly cost by class and tier, per million images (origin/lifecycle/cost.py)."""
    from origin.lifecycle import cost, inventory, prices
    from origin.lifecycle.observed import observed
    from origin.lifecycle.rules import Rules
    from origin.wiring import open_catalog, open_store

    metrics_source = args.metrics if args.metrics is not None else \
        os.environ.get("PROMETHEUS_MULTIPROC_DIR") or str(settings.data_dir / "metrics")
    catalog = open_catalog(settings.catalog)
    try:
        table = prices.load(settings.prices)
        walked = inventory.walk(open_store(settings))
        placement = Rules.from_settings(settings).placement()
        out = cost.report(walked, table, observed(metrics_source), catalog.dedup_summary(), dict(placement.tiers),
                          {cls for cls, _ in placement.tags})
    except ConfigError as exc:
        print(f"imagehost: cost: {exc}", file=sys.stderr)
        return 2
    except ImagehostError as exc:
        print(f"imagehost: cost: {exc.message}", file=sys.stderr)
        return 1
    finally:
        catalog.close()
    print(json.dumps(out) if args.json else cost.table(out), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagehost", description="a self-hosted image host")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the origin under gunicorn on the configured port")
    sub.add_parser("worker", help="consume the upload queue: validate, scan, moderate, process")
    sub.add_parser("setup", help="create the S3 bucket, SQS queue and bucket notification")
    ingest = sub.add_parser("ingest", help="import files, folders (recursive) and s3://bucket/prefix; one JSON "
                                           "line per file, a summary at the end; rerun to resume")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--owner", help="whose images they become (default: the first API key's owner)")
    ingest.add_argument("-j", "--jobs", type=int, default=1, help="files imported in parallel (default 1)")
    ingest.add_argument("--scan", action="store_true", help="malware-scan each file with clamd, as uploads are")
    ingest.add_argument("--moderate", action="store_true", help="run the moderation model; over the threshold: held")
    ingest.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    images = sub.add_parser("images", help="list images: a table, or JSON lines with --json")
    images.add_argument("--owner")
    images.add_argument("--state", choices=STATES)
    images.add_argument("--limit", type=int, default=100)
    images.add_argument("--json", action="store_true")
    for name, text in (("delete", "delete images everywhere: record, bytes, edge caches (as the API does)"),
                       ("approve", "approve held images: processing continues"),
                       ("reject", "reject held images: deleted and purged")):
        sub.add_parser(name, help=text).add_argument("ids", nargs="+", metavar="ID")
    evaluate = sub.add_parser("moderation-eval", help="precision, recall and a threshold curve on labelled folders")
    evaluate.add_argument("pos_dir", metavar="POS_DIR", help="pictures that should be held")
    evaluate.add_argument("neg_dir", metavar="NEG_DIR", help="pictures that should not")
    evaluate.add_argument("--model", help="an IMAGEHOST_MODERATION value (default: the configured one)")
    evaluate.add_argument("--threshold", type=float, help="default: IMAGEHOST_NSFW_THRESHOLD")
    evaluate.add_argument("--json", action="store_true")
    sub.add_parser("stop", help="stop what runs on this data dir: make serve's edge and origin, and clamd")
    sub.add_parser("compact", help="collapse duplicates found late, reclaim storage; safe to kill and rerun")
    lifecycle = sub.add_parser("lifecycle", help="move objects to colder tiers, evict variants over the budget")
    lifecycle.add_argument("--no-walk", action="store_true",
                           help="skip the store walk (no transitions or exact counts): eviction only")
    cost = sub.add_parser("cost", help="storage by class and tier, and what it costs per million images")
    cost.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    cost.add_argument("--metrics", default=None, metavar="URL|DIR",
                      help="where request counts come from: an origin's /metrics URL or its metrics directory")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"imagehost: configuration error: {exc}", file=sys.stderr)
        return 2
    commands = {"serve": cmd_serve, "ingest": cmd_ingest, "worker": cmd_worker, "setup": cmd_setup,
                "compact": cmd_compact, "lifecycle": cmd_lifecycle, "cost": cmd_cost, "stop": cmd_stop,
                "images": cmd_admin, "delete": cmd_admin, "approve": cmd_admin, "reject": cmd_admin,
                "moderation-eval": cmd_moderation_eval}
    return commands[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
