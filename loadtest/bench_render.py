"""Render benchmark: the origin against its own limit, measured in one run.

    .venv/bin/python loadtest/bench_render.py [--photo PATH] [--seconds N] [--quick]

The machine is small and noisy, so every target is relative to a baseline taken
in the same run, or an absolute figure that is generous on purpose:

    (a) limit      render() in-process, photo bytes in memory, 2 threads (one per core)
    (b) uncached   the same variants over HTTP through a real gunicorn (2 workers),
                   every request the first one for its variant: a store miss and a
                   real render. Target: b/a >= 0.9. (a) and (b) run in alternating
                   slices of ~2.5 s, so other jobs on the machine hit both alike.
    (c) stored     wrk -t2 -c32 on one stored w300 WebP URL. Target: >= 3,000 req/s
    (d) memory     one worker; a 50-megapixel JPEG's w1200.webp, w2400.avif and
                   original; the worker's peak RSS (VmHWM). Target: < 300 MB

Everything listens on 127.0.0.1; every load loop is bounded in count and time;
servers and temp dirs are removed at exit, Ctrl-C included.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from origin.config import Settings  # noqa: E402
from origin.pipeline.render import Encoding, render  # noqa: E402
from origin.pipeline.request import parse  # noqa: E402
from origin.pipeline.variants import render_options, render_source_key  # noqa: E402
from origin.wiring import open_catalog, open_store  # noqa: E402

DEFAULT_PHOTO = Path("/usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg")
VARIANTS = ("w300.webp", "w1200.webp")
THREADS = 2  # one per core: the machine this is sized for has two
MAX_RENDERS_PER_PHASE = 2000  # a hard bound on any loop, whatever --seconds says
# the caller may tune what is measured (qualities, effort, threads), nothing else
PASSED_THROUGH = {f"IMAGEHOST_{name}" for name in (
    "JPEG_QUALITY", "WEBP_QUALITY", "AVIF_QUALITY", "AVIF_EFFORT", "RENDER_CONCURRENCY", "THREADS",
    "WIDTHS", "THUMB_SIZES", "RECORD_CACHE_SECONDS")}
# a delivery-only origin, as in production where `imagehost worker` runs apart: no upload
# pipeline threads (moderation model, clamd) in the gunicorn workers, no hotlink checks
DELIVERY_ONLY = {"IMAGEHOST_WORKER_THREADS": "0", "IMAGEHOST_SCAN": "0", "IMAGEHOST_MODERATION": "off",
                 "IMAGEHOST_EDGE": "0", "IMAGEHOST_REFERERS": "", "IMAGEHOST_SIGNING_REQUIRED": "0"}
METRIC_LINE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?P<labels>\{[^}]*\})?\s+(?P<value>\S+)$", re.M)


# ---------------------------------------------------------------- helpers


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclasses.dataclass
class Phase:
    name: str
    count: int
    seconds: float
    latencies: list[float]  # seconds per image
    note: str = ""
    cpu: float = 0.0  # CPU seconds the renderer spent (this process for (a), the workers for (b))

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")

    @property
    def cpu_ms(self) -> float:
        """CPU per image: much less sensitive than img/s to other jobs on the machine."""
        return self.cpu / self.count * 1000 if self.count else float("nan")

    @property
    def p50_ms(self) -> float:
        return pct(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return pct(self.latencies, 99) * 1000

    def line(self) -> str:
        return (f"  {self.name:<34} {self.rate:8.2f} img/s   p50 {self.p50_ms:7.1f} ms   "
                f"p99 {self.p99_ms:7.1f} ms   CPU {self.cpu_ms:6.0f} ms/img   (n={self.count}, {self.seconds:.1f} s)"
                f"{self.note}")


def run_threads(worker, threads: int, seconds: float, limit: int) -> Phase:
    """Run worker(i) -> latency until the deadline or `limit` calls, in `threads` threads."""
    counter = itertools.count()
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    started = time.perf_counter()
    deadline = started + seconds
    finished = [started]
    stop = threading.Event()  # set when the main thread leaves (Ctrl-C included)

    def loop():
        try:
            while time.perf_counter() < deadline and not stop.is_set():
                i = next(counter)
                if i >= limit:
                    return
                latency = worker(i)
                if latency is None:  # the worker ran out of work
                    return
                with lock:
                    latencies.append(latency)
                    finished[0] = max(finished[0], time.perf_counter())
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    pool = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    try:
        for t in pool:
            t.start()
        for t in pool:
            while t.is_alive():
                t.join(0.2)
    finally:
        stop.set()
    if errors:
        raise errors[0]
    return Phase("", len(latencies), finished[0] - started, latencies)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- a server


class Server:
    """A real gunicorn on a free loopback port, in its own process group."""

    def __init__(self, data_dir: Path, workers: int):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEHOST_")}
        self.env.update({k: v for k, v in os.environ.items() if k in PASSED_THROUGH})
        self.env.update({
            "IMAGEHOST_HOST": "127.0.0.1",
            "IMAGEHOST_PORT": str(self.port),
            "IMAGEHOST_DATA_DIR": str(data_dir),
            "IMAGEHOST_WORKERS": str(workers),
            "PROMETHEUS_MULTIPROC_DIR": str(data_dir / "metrics"),
            **DELIVERY_ONLY,
        })
        self.settings = Settings.from_env(self.env)
        self.log_path = data_dir / "gunicorn.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:origin.gunicorn_conf", "origin.app:from_env()"],
            env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).ok and len(self.workers()) >= 1:
                    return self
            except requests.RequestException:  # not listening yet, or a slow first answer
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer within 60 s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def workers(self) -> list[int]:
        """Worker pids: the gunicorn master's children."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if self.proc is not None and ppid == self.proc.pid:
                pids.append(int(entry))
        return sorted(pids)

    def metric(self, name: str, labels: str = "") -> float:
        """The sum of a metric's samples (all workers, all label sets containing `labels`)."""
        text = requests.get(self.url + "/metrics", timeout=10).text
        total = 0.0
        for match in METRIC_LINE.finditer(text):
            if match["name"] == name and labels in (match["labels"] or ""):
                total += float(match["value"])
        return total

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.terminate()  # gunicorn: graceful stop of the master and its workers
            self.proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own group (start_new_session)
            self.proc.wait()


def cpu_seconds(pids: list[int] | None = None) -> float:
    """utime + stime of this process (all threads), or of the given processes."""
    if pids is None:
        times = os.times()
        return times.user + times.system
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def vm_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


# ---------------------------------------------------------------- ingest


def ingest_cli(server: Server, path: Path, extra_env: dict | None = None) -> str:
    """`imagehost ingest PATH` against the server's settings (validation, header, store,
    catalog: what a bulk import does); returns the new id."""
    out = subprocess.run([sys.executable, "-m", "origin.cli", "ingest", str(path)],
                         env={**server.env, **(extra_env or {})}, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"imagehost ingest {path} failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["id"]


def clone(server: Server, image_id: str, count: int) -> list[str]:
    """The same source object and record under `count` new ids, through the store and
    catalog ports. This skips re-validating bytes just validated, and any dedup an
    ingest may do, so that every id has its own source key and every first request
    for one of its variants is a real render (checked against /metrics)."""
    store = open_store(server.settings)
    catalog = open_catalog(server.settings.catalog)
    try:
        record = catalog.get(image_id)
        key = render_source_key(record)  # what a render reads
        blob = store.get(key)
        ids = []
        for n in range(count):
            new_id = f"bench{n:06d}{image_id[:8]}"
            store.put(key.replace(image_id, new_id, 1), blob, record.content_type)
            catalog.add(dataclasses.replace(record, id=new_id))
            ids.append(new_id)
        return ids
    finally:
        catalog.close()


def record_for(server: Server, image_id: str):
    catalog = open_catalog(server.settings.catalog)
    try:
        return catalog.get(image_id)
    finally:
        catalog.close()


# ---------------------------------------------------------------- phases


def limit_runner(data: bytes, record, settings: Settings, variant: str):
    """(a): render() as the origin calls it for `variant`, from the photo bytes in memory."""
    request = parse(record.id, variant, settings.widths, settings.thumb_sizes)
    options = render_options(request, record, request.fmt)
    encoding = Encoding.from_settings(settings)
    render(data, options, encoding)  # warm-up: libvips' first call per operation

    def one(_):
        started = time.perf_counter()
        render(data, options, encoding)
        return time.perf_counter() - started

    def run(seconds: float) -> Phase:
        cpu = cpu_seconds()
        phase = run_threads(one, THREADS, seconds, MAX_RENDERS_PER_PHASE)
        phase.cpu = cpu_seconds() - cpu
        return phase

    return run


class IdPool:
    """Ids not yet asked for; each is taken once per variant, so every request is a store miss."""

    def __init__(self, ids: list[str], variants):
        self._ids = list(ids)
        self._next = {v: 0 for v in variants}
        self._lock = threading.Lock()

    def take(self, variant: str) -> str | None:
        with self._lock:
            i = self._next[variant]
            if i >= len(self._ids):
                return None
            self._next[variant] = i + 1
            return self._ids[i]

    def exhausted(self, variant: str) -> bool:
        with self._lock:
            return self._next[variant] >= len(self._ids)


def uncached_runner(server: Server, pool: IdPool, variant: str):
    """(b): GET the variant of a fresh id, 2 client threads, keep-alive sessions."""
    sessions = threading.local()
    fmt = variant.rsplit(".", 1)[1]

    def one(_):
        image_id = pool.take(variant)
        if image_id is None:
            return None
        session = getattr(sessions, "s", None)
        if session is None:
            session = sessions.s = requests.Session()
        started = time.perf_counter()
        resp = session.get(f"{server.url}/images/{image_id}/{variant}", timeout=120)
        latency = time.perf_counter() - started
        if resp.status_code != 200 or resp.headers.get("Content-Type") != f"image/{fmt}" or not resp.content:
            raise RuntimeError(f"GET {variant} of {image_id}: {resp.status_code} {resp.text[:200]}")
        return latency

    def run(seconds: float) -> Phase:
        renders_before = server.metric("imagehost_renders_total")
        workers = server.workers()
        cpu = cpu_seconds(workers)
        phase = run_threads(one, THREADS, seconds, MAX_RENDERS_PER_PHASE)
        phase.cpu = cpu_seconds(workers) - cpu
        renders = server.metric("imagehost_renders_total") - renders_before
        if pool.exhausted(variant):
            phase.note += "  [ran out of ids]"
        if renders != phase.count:
            phase.note += f"  [WARNING: {renders:.0f} renders for {phase.count} requests: not all were misses]"
        return phase

    return run


def interleave(run_a, run_b, seconds: float, slice_seconds: float = 2.5) -> tuple[Phase, Phase]:
    """Alternate short slices of a and b, so that the noise of a shared machine
    (other jobs come and go) falls on both sides of the ratio alike."""
    rounds = max(1, round(seconds / slice_seconds))
    total_a, total_b = Phase("", 0, 0.0, []), Phase("", 0, 0.0, [])
    for _ in range(rounds):
        for run, total in ((run_a, total_a), (run_b, total_b)):
            part = run(seconds / rounds)
            total.count += part.count
            total.seconds += part.seconds
            total.latencies += part.latencies
            total.cpu += part.cpu
            if part.note and part.note not in total.note:
                total.note += part.note
    return total_a, total_b


WRK_LATENCY = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def phase_stored(server: Server, image_id: str, seconds: float) -> dict:
    url = f"{server.url}/images/{image_id}/w300.webp"
    first = requests.get(url, timeout=60)
    first.raise_for_status()
    hits_before = server.metric("imagehost_store_lookups_total", 'result="hit"')
    again = requests.get(url, timeout=60)
    again.raise_for_status()
    if server.metric("imagehost_store_lookups_total", 'result="hit"') <= hits_before:
        raise RuntimeError("the second request for the variant was not a store hit")
    duration = max(1, round(seconds))
    cmd = ["wrk", "-t2", "-c32", f"-d{duration}s", "--latency", "--timeout", "10s", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    text = out.stdout
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    lat = {q: float(v) * UNIT[u] for q, v, u in WRK_LATENCY.findall(text)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock_err = re.search(r"Socket errors:(.*)", text)
    return {
        "rps": float(rps.group(1)) if rps else float("nan"),
        "p50_ms": lat.get("50", float("nan")),
        "p99_ms": lat.get("99", float("nan")),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sock_err.group(1).strip() if sock_err else "",
        "raw": text,
        "body_bytes": len(first.content),
    }


def phase_memory(tmp: Path) -> dict:
    from tests.images import big_jpeg

    data = big_jpeg(50)
    server = Server(tmp / "memory", workers=1)
    server.start()
    try:
        (worker,) = server.workers()
        # the catalog and store exist now (the worker made them); ingest beside it.
        # big_jpeg(50) is ~25 MB, over the 20 MB upload limit: raised for this ingest,
        # on purpose, because this measures rendering memory, not the upload check.
        path = tmp / "big50.jpg"
        path.write_bytes(data)
        ids = [ingest_cli(server, path, {"IMAGEHOST_MAX_UPLOAD_BYTES": str(len(data) + 1)})]
        record = record_for(server, ids[0])
        result = {
            "source": f"{record.width}x{record.height} JPEG, {len(data) / 1e6:.1f} MB",
            "rss_before_mb": vm_kb(worker, "VmRSS") / 1024,
            "steps": [],
        }
        del data
        session = requests.Session()
        for variant in ("w1200.webp", "w2400.avif", "original"):
            started = time.perf_counter()
            resp = session.get(f"{server.url}/images/{ids[0]}/{variant}", timeout=180)
            if resp.status_code != 200:
                raise RuntimeError(f"GET {variant}: {resp.status_code} {resp.text[:200]}")
            result["steps"].append((variant, time.perf_counter() - started, len(resp.content),
                                    vm_kb(worker, "VmHWM") / 1024, vm_kb(worker, "VmRSS") / 1024))
        if server.workers() != [worker]:
            raise RuntimeError("the worker was replaced during the memory phase (killed?)")
        result["peak_mb"] = vm_kb(worker, "VmHWM") / 1024
        return result
    finally:
        server.stop()


# ---------------------------------------------------------------- main


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each phase (default 10)")
    ap.add_argument("--quick", action="store_true", help="a short smoke run (2 s phases)")
    args = ap.parse_args(argv)
    seconds = 2.0 if args.quick else args.seconds
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (Debian package wrk)", file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, _interrupt)  # like Ctrl-C: unwind through the finally blocks
    tmp = Path(tempfile.mkdtemp(prefix="imagehost-bench-render-"))
    server: Server | None = None
    try:
        data = args.photo.read_bytes()
        server = Server(tmp / "origin", workers=THREADS)
        settings = server.settings
        print(f"photo: {args.photo} ({len(data) / 1e6:.1f} MB); {seconds:g} s per phase; "
              f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}; WebP Q{settings.webp_quality}")

        # ids for (b): the photo under enough ids that no request repeats one
        ids = [ingest_cli(server, args.photo)]
        record = record_for(server, ids[0])
        request = parse(record.id, VARIANTS[0], settings.widths, settings.thumb_sizes)
        started = time.perf_counter()
        render(data, render_options(request, record, request.fmt), Encoding.from_settings(settings))
        fastest = (time.perf_counter() - started) * 0.6  # two in parallel are never faster than this
        count = min(MAX_RENDERS_PER_PHASE, math.ceil(THREADS * seconds / fastest) + 8)
        started = time.perf_counter()
        ids += clone(server, ids[0], count)
        print(f"source: {record.width}x{record.height} {record.content_type}; "
              f"ingested {len(ids)} ids in {time.perf_counter() - started:.1f} s")
        server.start()
        print(f"gunicorn on {server.url}: workers {server.workers()}")
        warm, pool = ids[:4], IdPool(ids[4:], VARIANTS)
        for variant in VARIANTS:  # the first request in a worker imports and warms libvips
            threads = [threading.Thread(target=requests.get, args=(f"{server.url}/images/{i}/{variant}",),
                                        kwargs={"timeout": 60}) for i in warm]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        # (a) and (b), interleaved
        limits, uncached = {}, {}
        for variant in VARIANTS:
            limits[variant], uncached[variant] = interleave(
                limit_runner(data, record, settings, variant), uncached_runner(server, pool, variant), seconds)
            limits[variant].name = f"(a) limit {variant} in-process"
            uncached[variant].name = f"(b) uncached {variant} over HTTP"
            print(limits[variant].line())
            print(uncached[variant].line(), flush=True)
        peaks = {pid: vm_kb(pid, "VmHWM") / 1024 for pid in server.workers()}
        print("      worker peak RSS after (b): " + ", ".join(f"{pid}: {mb:.0f} MB" for pid, mb in peaks.items()))

        # (c) a stored variant over HTTP
        stored = phase_stored(server, ids[0], seconds)
        print(f"  (c) stored w300.webp, wrk -t2 -c32    {stored['rps']:8.0f} req/s   p50 {stored['p50_ms']:7.2f} ms"
              f"   p99 {stored['p99_ms']:7.2f} ms   ({stored['body_bytes']} B body)", flush=True)
        if stored["non2xx"] or stored["socket_errors"]:
            print(f"      wrk: non-2xx {stored['non2xx']}, socket errors: {stored['socket_errors']}")
        server.stop()

        # (d) memory, on a fresh single-worker server
        memory = phase_memory(tmp)
        print(f"  (d) memory: {memory['source']}; worker RSS before {memory['rss_before_mb']:.0f} MB")
        for variant, secs, size, hwm, rss in memory["steps"]:
            print(f"      {variant:<11} {secs:6.2f} s {size / 1e6:7.2f} MB   VmHWM {hwm:6.0f} MB   VmRSS {rss:6.0f} MB")

        # the table
        rows = []
        for variant in VARIANTS:
            a, b = limits[variant], uncached[variant]
            rows.append((f"(a) limit {variant} (2 threads)", f"{a.rate:.2f} img/s",
                         f"{a.p50_ms:.0f} / {a.p99_ms:.0f} ms", "baseline", ""))
            rows.append((f"(b) uncached {variant} HTTP", f"{b.rate:.2f} img/s",
                         f"{b.p50_ms:.0f} / {b.p99_ms:.0f} ms", "", ""))
            ratio = b.rate / a.rate if a.rate else float("nan")
            rows.append((f"    b/a {variant}", f"{ratio:.2f}", "", ">= 0.9", verdict(ratio >= 0.9)))
            rows.append((f"    CPU per image, b vs a {variant}", f"{b.cpu_ms / a.cpu_ms:.2f}x",
                         f"{b.cpu_ms:.0f} vs {a.cpu_ms:.0f} ms", "info", ""))
        rows.append(("(c) stored w300.webp, wrk -c32", f"{stored['rps']:,.0f} req/s",
                     f"{stored['p50_ms']:.2f} / {stored['p99_ms']:.2f} ms", ">= 3,000 req/s",
                     verdict(stored["rps"] >= 3000 and not stored["non2xx"])))
        rows.append(("(d) peak worker RSS, 50 MP JPEG", f"{memory['peak_mb']:.0f} MB", "", "< 300 MB",
                     verdict(memory["peak_mb"] < 300)))
        print(f"\nload average now {os.getloadavg()[0]:.1f} (other jobs on the machine skew img/s; "
              "CPU per image is the steadier figure)")
        header = ("figure", "value", "p50 / p99", "target", "")
        widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(5)]
        print()
        print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
        print("-+-".join("-" * w for w in widths))
        for row in rows:
            print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths)))
        return 0
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
