"""The soak: uncached renders through a real origin (gunicorn, the embedded defaults) across real
photos, sizes and formats, printing the workers' memory, open file descriptors and temporary files
every --every renders. Each request finds its variant missing (the stored copy is removed first), so
every one renders. Passes when, after the warm-up (the first two reports), RSS grows less than 20 %
and neither descriptors nor temporary files grow.

    .venv/bin/python loadtest/soak.py [--renders 10000] [--every 1000] [--clients 3]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest.faults import real_photos  # noqa: E402
from tests.servers import start_origin, stop  # noqa: E402

WIDTHS = (150, 300, 600, 1200)
FORMATS = ("webp", "jpeg", "avif", "png")
THUMBS = ("sq64", "sm150", "sq300")


def workers_of(master: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def temp_files(*dirs: Path) -> int:
    return sum(1 for d in dirs if d.exists() for p in d.rglob("*") if p.is_file() and (
        p.name.startswith((".tmp-", "vips-")) or p.suffix == ".v"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--max-photo-bytes", type=int, default=6_000_000, help="skip larger sources (time)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="imagehost-soak-"))
    photos = [p for p in real_photos(min(args.photos * 3, 120)) if p.stat().st_size <= args.max_photo_bytes]
    photos = photos[: args.photos]
    private_tmp = work / "tmp"  # the origin's own temp dir: nobody else's files are counted
    private_tmp.mkdir()
    origin = start_origin(work / "var", {"IMAGEHOST_WORKER_THREADS": "0", "IMAGEHOST_SCAN": "0",
                                         "IMAGEHOST_MODERATION": "off", "TMPDIR": str(private_tmp)}, workers=2)
    try:
        ingested = origin.ingest(*photos)
        if ingested.returncode != 0:
            raise SystemExit(ingested.stderr)
        import json

        ids = [json.loads(line)["id"] for line in ingested.stdout.splitlines() if line.startswith("{")]
        store = work / "var" / "store" / "images"
        print(f"soak: {len(ids)} real photos, {args.renders} uncached renders, {args.clients} clients, "
              f"gunicorn pid {origin.proc.pid}", flush=True)
        return soak(origin, ids, store, args, [private_tmp, work / "var"])
    finally:
        stop(origin.proc)


def soak(origin, ids: list[str], store: Path, args, temp_dirs: list[Path]) -> int:
    done = 0
    errors = 0
    lock = threading.Lock()
    rows = []
    next_report = [args.every]
    report_lock = threading.Lock()
    started = time.monotonic()

    def report() -> None:
        pids = workers_of(origin.proc.pid)
        row = (done, sum(rss_kib(p) for p in pids) // 1024, max(rss_kib(p) for p in pids) // 1024,
               sum(fds(p) for p in pids), temp_files(*temp_dirs), errors, time.monotonic() - started)
        rows.append(row)
        print(f"{row[0]:>7} renders  RSS {row[1]:>5} MB (max worker {row[2]:>4} MB)  fds {row[3]:>4}  "
              f"temp files {row[4]:>3}  errors {row[5]}  {row[6]:>6.0f} s", flush=True)

    def client(seed: int) -> None:
        nonlocal done, errors
        rnd = random.Random(seed)
        session = requests.Session()
        while True:
            with lock:
                if done >= args.renders:
                    return
            image_id = rnd.choice(ids)
            if rnd.random() < 0.2:
                name, fmt = rnd.choice(THUMBS), rnd.choice(("webp", "avif"))
            else:
                name, fmt = f"w{rnd.choice(WIDTHS)}", rnd.choice(FORMATS)
            key = store / image_id / f"{name}.{'jpg' if fmt == 'jpeg' else fmt}"
            try:
                key.unlink()  # so this request renders
            except FileNotFoundError:
                pass
            answer = session.get(f"{origin.url}/images/{image_id}/{name}.{fmt}", timeout=120)
            with lock:
                done += 1
                errors += answer.status_code != 200
                due = done >= next_report[0]
                if due:
                    next_report[0] += args.every
            if due:
                with report_lock:
                    report()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(rows) < 3:
        print("soak: too few reports to judge (raise --renders or lower --every)")
        return 1
    base = rows[1]  # after the warm-up
    last = rows[-1]
    growth = (last[1] - base[1]) / base[1]
    checks = {
        f"RSS after warm-up grew {100 * growth:+.1f} % (< 20 %)": growth < 0.20,
        f"file descriptors {base[3]} → {last[3]} (no growth)": last[3] <= base[3] + 2,
        f"temporary files {base[4]} → {last[4]} (no growth)": last[4] <= base[4],
        f"errors {last[5]}": last[5] == 0,
    }
    for what, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
