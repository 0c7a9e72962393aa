"""The `imagehost` command: serve, ingest."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from origin.config import ConfigError, Settings
from origin.errors import ImagehostError


def cmd_serve(settings: Settings, args) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # create the store and schema once, before workers fork
    from origin.ports.catalog import open_catalog
    from origin.ports.store import open_store

    open_store(settings).ping()
    open_catalog(settings.catalog).close()
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(settings.data_dir.resolve() / "metrics"))
    argv = ["gunicorn", "-c", "python:origin.gunicorn_conf", "origin.app:from_env()"]
    print(f"imagehost: serving on http://{settings.host}:{settings.port}/ (data in {settings.data_dir})", flush=True)
    os.execvp(sys.executable, [sys.executable, "-m", *argv])
    return 1  # not reached


def cmd_ingest(settings: Settings, args) -> int:
    from origin.ingest.originals import ingest
    from origin.ports.catalog import open_catalog
    from origin.ports.store import open_store

    store = open_store(settings)
    catalog = open_catalog(settings.catalog)
    failures = 0
    for name in args.paths:
        path = Path(name)
        try:
            data = path.read_bytes()
            record = ingest(data, store, catalog, max_bytes=settings.max_upload_bytes)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagehost", description="a self-hosted image host")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the origin under gunicorn on the configured port")
    ingest = sub.add_parser("ingest", help="store image files as new images; one JSON line per file")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"imagehost: configuration error: {exc}", file=sys.stderr)
        return 2
    return {"serve": cmd_serve, "ingest": cmd_ingest}[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
