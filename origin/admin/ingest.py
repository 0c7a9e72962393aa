"""`imagehost ingest PATH|s3://bucket/prefix ... [--owner NAME] [-j N] [--scan] [--moderate]`

Output: one JSON line per file on stdout, in input order ({"file", "id", "url", "status"});
refusals on stderr ("imagehost: NAME: refused: why"); at the end a summary on stderr
(imported, exact and near duplicates, held, already in, refused by reason). On a terminal
(stderr is a TTY) a progress bar with rate and ETA (rich) stands below the lines. Exit 1 when
any file was refused or failed.
"""
from __future__ import annotations

import json
import sys

from origin.admin.context import default_owner, pipeline, settings_for_admin
from origin.errors import ImagehostError
from origin.ingest import bulk


def items(settings, paths: list[str]) -> list[bulk.Item]:
    local = [p for p in paths if not p.startswith("s3://")]
    found = list(bulk.local_items(local))
    remote = [p for p in paths if p.startswith("s3://")]
    if remote:
        from origin.ports.s3_source import S3Source

        source = S3Source.from_settings(settings)
        for url in remote:
            found += list(bulk.s3_items(source, url))
    return found


def run(settings, args) -> int:
    from origin.metrics import build_metrics

    settings = settings_for_admin(settings)
    if args.scan:
        from dataclasses import replace

        from origin.services.clamd import ensure_clamd  # the data dir's clamd, as `make serve` starts it

        settings = replace(settings, clamd_socket=str(ensure_clamd(settings)))
    owner = args.owner or default_owner(settings)
    try:
        work = items(settings, args.paths)
    except ImagehostError as exc:  # a bucket that cannot be listed, a malformed s3:// URL
        print(f"imagehost: ingest: {exc.message}", file=sys.stderr)
        return 2
    pipe = pipeline(settings, scan=args.scan, moderate=args.moderate, metrics=build_metrics())
    show = Display(settings.base_url, len(work), tty=sys.stderr.isatty() and not args.no_progress)
    try:
        with show:
            summary = bulk.run(pipe, work, owner, jobs=args.jobs, on_done=show.done)
    finally:
        pipe.catalog.close()
    print(f"imagehost: ingest as {owner!r}: {summary.line()}", file=sys.stderr, flush=True)
    return 0 if summary.ok else 1


class Display:
    """Per-file lines, and on a terminal a live progress bar below them."""

    def __init__(self, base_url: str, total: int, tty: bool):
        self.base_url = base_url
        self.progress = None
        if tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                                     TextColumn("ETA"), TimeRemainingColumn(), transient=False)
            self.task = self.progress.add_task("ingest", total=total)

    def __enter__(self):
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()

    def done(self, outcome: bulk.Outcome) -> None:
        if outcome.status in (bulk.REFUSED, bulk.FAILED):
            self._print(f"imagehost: {outcome.name}: refused: {outcome.message} ({outcome.reason})", sys.stderr)
        else:
            url = f"{self.base_url}/images/{outcome.id}/original"
            self._print(json.dumps({"id": outcome.id, "url": url, "file": outcome.name, "status": outcome.status}),
                        sys.stdout)
        if self.progress is not None:
            self.progress.advance(self.task)

    def _print(self, line: str, stream) -> None:
        if self.progress is not None and stream.isatty():
            self.progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=stream, flush=True)


def _rate_column():
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.1f} img/s" if speed else "- img/s")

    return Rate


def RateColumn():  # noqa: N802  (a column class made on first use: rich is imported only on a terminal)
    return _rate_column()()
