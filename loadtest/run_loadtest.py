"""Edge load test, measured in one run (make loadtest):

    .venv/bin/python loadtest/run_loadtest.py [--images N] [--seconds S] [--users U] [--smoke]

    1. start a real origin (gunicorn) and its nginx edge on free loopback ports, every
       hotlink check on: Referer allow-list and signed URLs required; plus a second
       server block on the same nginx and cache with no checks (the baseline)
    2. seed N Debian mate-backgrounds photos with `imagehost ingest`, warm every URL
       the scenario can ask for (each variant × format class)
    3. locust headless (loadtest/locustfile.py) for S seconds: req/s, p50/p95/p99,
       error rate, edge hit ratio (X-Cache-Status) after the warm-up seconds
    4. wrk on one cached variant: the checked edge vs the unchecked baseline

Targets: no errors; hit ratio >= 95 %; checked/baseline HIT throughput >= 0.5;
checked HIT p99 < 5 ms. --smoke (~30 s, tests/test_edge_loadtest.py) checks
behaviour only (errors, hit ratio). The last line printed is the JSON summary.
Everything listens on 127.0.0.1; every phase is bounded; servers and the temp
dir are removed at exit.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PHOTO_DIR = Path("/usr/share/backgrounds/mate")
REFERER = "https://www.loadtest.example/gallery"
HOTLINK = "https://hotlinker.test/stolen"
SIGNING_KEYS = "lt2:loadtest-new-secret,lt1:loadtest-old-secret"
ACCEPTS = {  # browser → Accept for images, and its share of the traffic (%)
    "chromium": ("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", 45),
    "firefox": ("image/avif,image/webp,*/*", 20),
    "safari17": ("image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,"
                 "image/svg+xml,image/*;q=0.8,*/*;q=0.5", 15),
    "safari15": ("image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", 10),
    "curl": ("*/*", 10),
}
ONE_PER_CLASS = ("chromium", "safari15", "curl")  # avif, webp, jpeg
EXPLICIT = ("webp", "avif", "jpeg")


def variants(widths, thumbs) -> list[str]:
    """Every variant the scenario asks for: widths negotiated and explicit, thumbnails negotiated."""
    names = []
    for width in widths:
        names += [f"w{width}"] + [f"w{width}.{fmt}" for fmt in EXPLICIT]
    for size in thumbs:
        names += [f"sq{size}", f"sm{size}"]
    return names


def negotiated(variant: str) -> bool:
    return "." not in variant


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=5).status_code < 500:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class Stack:
    """origin (gunicorn) + nginx edge with a checked and an unchecked server block."""

    def __init__(self, tmp: Path, smoke: bool):
        from edge.render import EdgeOptions, nginx_command, render
        from origin.config import Settings

        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        origin_port, port, plain_port = free_port(), free_port(), free_port()
        self.env = {
            **os.environ, "IMAGEHOST_DATA_DIR": str(tmp / "var"), "IMAGEHOST_PORT": str(origin_port),
            "IMAGEHOST_WORKERS": str(os.cpu_count() or 2), "IMAGEHOST_SCAN": "0", "IMAGEHOST_MODERATION": "off",
            "IMAGEHOST_WORKER_THREADS": "0", "IMAGEHOST_REFERERS": "loadtest.example,*.loadtest.example",
            "IMAGEHOST_ALLOW_EMPTY_REFERER": "1", "IMAGEHOST_SIGNING_REQUIRED": "1",
            "IMAGEHOST_SIGNING_KEYS": SIGNING_KEYS, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "var" / "metrics"),
        }
        if smoke:
            self.env.update({"IMAGEHOST_WIDTHS": "150,300", "IMAGEHOST_THUMB_SIZES": "64"})
        self.settings = Settings.from_env(self.env)
        self.settings.data_dir.mkdir(parents=True)
        self.origin_url = f"http://127.0.0.1:{origin_port}"
        self.url, self.plain_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{plain_port}"
        self.options = EdgeOptions(prefix=tmp / "edge", listen=f"127.0.0.1:{port}",
                                   origin=f"127.0.0.1:{origin_port}", plain_listen=f"127.0.0.1:{plain_port}")
        self.conf = render(self.settings, self.options)
        self._nginx_command = nginx_command(self.conf)

    def start(self) -> None:
        log = open(self.tmp / "gunicorn.log", "ab")
        gunicorn = [sys.executable, "-m", "gunicorn", "-c", "python:origin.gunicorn_conf", "origin.app:from_env()"]
        self.procs.append(subprocess.Popen(gunicorn, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        wait_http(self.origin_url + "/healthz", self.procs[-1])
        self.procs.append(subprocess.Popen(self._nginx_command, stdout=log, stderr=subprocess.STDOUT))
        wait_http(self.url + "/healthz", self.procs[-1])

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def access_log(self) -> Path:
        return self.options.prefix / "logs" / "access.log"


def seed(stack: Stack, count: int) -> list[str]:
    photos = sorted(PHOTO_DIR.glob("*/*.jpg")) + sorted(PHOTO_DIR.glob("*/*.png"))
    photos = [p for p in photos if p.stat().st_size < 5_000_000][:count]
    if len(photos) < count:
        raise RuntimeError(f"only {len(photos)} photos under {PHOTO_DIR} (make test installs mate-backgrounds)")
    out = subprocess.run([sys.executable, "-m", "origin.cli", "ingest", *map(str, photos)], env=stack.env,
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"ingest failed: {out.stderr}")
    return [json.loads(line)["id"] for line in out.stdout.splitlines()]


def signed(path: str, expires_in: int = 3600) -> str:
    from origin.security.signing import SigningKeys, sign_path

    return sign_path(SigningKeys.parse(SIGNING_KEYS), path, expires_in)


def warm(stack: Stack, ids: list[str]) -> dict:
    """Ask for every URL the scenario can produce once: the renders happen here, not in the measurement."""
    import requests

    jobs = []
    for image_id in ids:
        for variant in variants(stack.settings.widths, stack.settings.thumb_sizes):
            for browser in (ONE_PER_CLASS if negotiated(variant) else ("curl",)):
                jobs.append((signed(f"/images/{image_id}/{variant}"), ACCEPTS[browser][0]))
    session = requests.Session()

    def one(job):
        url, accept = job
        return session.get(stack.url + url, headers={"Accept": accept, "Referer": REFERER}, timeout=120).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        codes = list(pool.map(one, jobs))
    bad = [c for c in codes if c != 200]
    if bad:
        raise RuntimeError(f"warm-up: {len(bad)} of {len(codes)} answers were not 200: {sorted(set(bad))}")
    return {"urls": len(jobs), "seconds": round(time.monotonic() - started, 1)}


def run_locust(stack: Stack, ids: list[str], seconds: int, users: int, warmup: int) -> dict:
    manifest, report = stack.tmp / "manifest.json", stack.tmp / "locust-report.json"
    manifest.write_text(json.dumps({
        "ids": ids, "variants": variants(stack.settings.widths, stack.settings.thumb_sizes),
        "accepts": ACCEPTS, "referer": REFERER, "hotlink": HOTLINK, "signing_keys": SIGNING_KEYS,
        "warmup": warmup, "report": str(report),
    }))
    env = {**os.environ, "IMAGEHOST_LOADTEST_MANIFEST": str(manifest)}
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "locustfile.py"), "--headless",
               "--host", stack.url, "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--only-summary",
               "--loglevel", "WARNING", "--stop-timeout", "5"]
    out = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120)
    if not report.exists():
        raise RuntimeError(f"locust wrote no report (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(report.read_text())


LATENCY = re.compile(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", re.M)
WRK_SLICES = 4  # checked and plain alternate, so drift on a shared machine hits both alike
SATURATE, LIGHT = 8, 2  # wrk connections: throughput at saturation; HIT latency at light concurrency


def worker_pids(prefix: Path) -> list[str]:
    master = (prefix / "nginx.pid").read_text().strip()
    children = subprocess.run(["pgrep", "-P", master], capture_output=True, text=True).stdout.split()
    return [pid for pid in children if b"worker process" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def cpu_seconds(pids: list[str]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, headers: dict, seconds: int, pids: list[str], connections: int) -> dict:
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    cpu_before = cpu_seconds(pids)
    out = subprocess.run(command + [url], capture_output=True, text=True, timeout=seconds + 30)
    cpu = cpu_seconds(pids) - cpu_before
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
    value, unit = LATENCY.search(out.stdout).groups()
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out.stdout)
    return {"requests": int(re.search(r"(\d+) requests in", out.stdout).group(1)),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1)),
            "p99_ms": float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], "cpu_s": cpu,
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": "Socket errors" in out.stdout}


def merge(slices: list[dict], seconds: float) -> dict:
    """Requests over the slices' time; p99: the median of the slices' p99 (one noisy slice cannot decide)."""
    requests = sum(s["requests"] for s in slices)
    p99s = sorted(s["p99_ms"] for s in slices)
    return {"rps": requests / (seconds * len(slices)), "p99_ms": p99s[len(p99s) // 2], "p99_ms_max": p99s[-1],
            "cpu_us_per_request": 1e6 * sum(s["cpu_s"] for s in slices) / max(1, requests),
            "non2xx": sum(s["non2xx"] for s in slices), "socket_errors": any(s["socket_errors"] for s in slices)}


def log_statuses(path: Path, start: int) -> dict:
    time.sleep(1.5)  # the access log is flushed every second
    counts: dict[str, int] = {}
    with open(path, "rb") as fh:
        fh.seek(start)
        for line in fh:
            match = re.search(rb"cache=(\S*)", line)
            key = match.group(1).decode() if match else "?"
            counts[key] = counts.get(key, 0) + 1
    return counts


def compare_wrk(stack: Stack, image_id: str, seconds: int) -> dict:
    """wrk on one cached variant: every check on (Referer map + njs HMAC) vs the plain server block."""
    import requests

    path = f"/images/{image_id}/w300"
    accept = ACCEPTS["chromium"][0]
    checked_url = stack.url + signed(path)
    targets = {"checked": (checked_url, {"Accept": accept, "Referer": REFERER}),
               "plain": (stack.plain_url + path, {"Accept": accept})}
    for url, headers in targets.values():
        resp = requests.get(url, headers=headers, timeout=30)
        if resp.status_code != 200 or resp.headers.get("X-Cache-Status") != "HIT":
            raise RuntimeError(f"wrk target {url} answered {resp.status_code} {resp.headers.get('X-Cache-Status')}")
    time.sleep(1.5)
    start = stack.access_log().stat().st_size
    pids = worker_pids(stack.options.prefix)
    slice_seconds = max(1, seconds // WRK_SLICES)
    result = {}
    for phase, connections, rounds in (("saturated", SATURATE, WRK_SLICES), ("light", LIGHT, WRK_SLICES // 2)):
        slices: dict[str, list] = {"checked": [], "plain": []}
        for _ in range(rounds):
            for name, (url, headers) in targets.items():
                slices[name].append(run_wrk(url, headers, slice_seconds, pids, connections))
        result[phase] = {name: merge(runs, slice_seconds) for name, runs in slices.items()}
    checked, plain = result["saturated"]["checked"], result["saturated"]["plain"]
    return {"checked": checked, "plain": plain, "ratio": checked["rps"] / plain["rps"] if plain["rps"] else 0.0,
            "cpu_ratio": plain["cpu_us_per_request"] / checked["cpu_us_per_request"],
            "light": result["light"], "cache_statuses": log_statuses(stack.access_log(), start)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--wrk-seconds", type=int, default=12, help="per target, saturated phase")
    parser.add_argument("--smoke", action="store_true", help="~30 s, behaviour only (used by the test suite)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.images, args.seconds, args.users, args.wrk_seconds = 3, 12, 8, 4
    warmup = max(2, args.seconds // 6)
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            print(f"loadtest: {tool} is not installed (make test installs it)", file=sys.stderr)
            return 2
    tmp = Path(tempfile.mkdtemp(prefix="imagehost-loadtest-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stack = Stack(tmp, args.smoke)
    try:
        stack.start()
        ids = seed(stack, args.images)
        warmed = warm(stack, ids)
        print(f"loadtest: {len(ids)} images seeded, {warmed['urls']} URLs warmed in {warmed['seconds']} s", flush=True)
        locust = run_locust(stack, ids, args.seconds, args.users, warmup)
        wrk = compare_wrk(stack, ids[0], args.wrk_seconds)
    finally:
        stack.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return report(args, locust, wrk)


def report(args, locust: dict, wrk: dict) -> int:
    hit_ratio = locust["hit_ratio"]
    wrk_errors = sum(w["non2xx"] + w["socket_errors"] for w in (wrk["checked"], wrk["plain"], *wrk["light"].values()))
    checks = {"no errors": locust["failures"] == 0 and wrk_errors == 0, "hit ratio >= 95 %": hit_ratio >= 0.95}
    if not args.smoke:
        checks["checked/plain HIT throughput >= 0.5"] = wrk["ratio"] >= 0.5
        checks["checked HIT p99 < 5 ms"] = wrk["light"]["checked"]["p99_ms"] < 5.0
    print(f"locust  {args.users} users, {args.seconds} s: {locust['rps']:.0f} req/s, "
          f"p50 {locust['p50_ms']:.1f} ms, p95 {locust['p95_ms']:.1f} ms, p99 {locust['p99_ms']:.1f} ms, "
          f"errors {locust['failures']}/{locust['requests']} ({locust['error_rate']:.2%}), "
          f"edge hit ratio after {locust['warmup']} s warm-up {hit_ratio:.2%} {locust['cache_statuses']}")
    for name, label in (("checked", "every check on (Referer + HMAC)"), ("plain", "same nginx + cache, no checks")):
        w, light = wrk[name], wrk["light"][name]
        print(f"wrk     {label}: {w['rps']:.0f} req/s at -c{SATURATE} (p99 {w['p99_ms']:.2f} ms), "
              f"nginx CPU {w['cpu_us_per_request']:.1f} us/request; HIT p99 at -c{LIGHT}: {light['p99_ms']:.2f} ms "
              f"(worst slice {light['p99_ms_max']:.2f} ms, {light['rps']:.0f} req/s)")
    print(f"wrk     throughput ratio checked/plain {wrk['ratio']:.2f} (CPU-cost ratio {wrk['cpu_ratio']:.2f}); "
          f"edge log during wrk: {wrk['cache_statuses']}")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print(json.dumps({"smoke": args.smoke, "locust": locust, "wrk": wrk, "checks": checks}))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
