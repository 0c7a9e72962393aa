"""`make faults`: the fault drill. The fleet shape (edge/cluster.py) under a steady read load and a
steady upload load, with one part failing at a time, each for --fault-seconds, recovery between:

    origin-kill     SIGKILL one origin's gunicorn master (its workers die with it when it restarts)
    worker-kill     SIGKILL one `imagehost worker` while it holds a job
    postgres-stop   stop the catalog's PostgreSQL (fast shutdown), then start it again
    s3-cut          cut the path to S3 (connections refused and reset; moto keeps the bucket)
    clamd-stop      stop clamd, then start it again
    rolling         restart both origins one at a time, gracefully (a deploy)

Reads: Zipf popularity over >= 50 real photos (Debian's wallpaper packages) and over the delivery
variants, a browser Accept mix, some conditional requests, a partly warm edge cache; also, now and
then, the URL of a held image, which must never be served. Uploads: distinct real photos (crops,
flips and re-encodings of the Debian ones) through the upload API and a presigned POST to S3, one
in ten carrying the EICAR signature, which must end quarantined, never ready.

Printed for each phase and overall: reads sent, read success (2xx/304), read p50/p99, uploads
accepted (S3 took the bytes), uploads that reached a terminal state after recovery, uploads lost,
the upload API's answers by status, and the seconds to recover (until every upload accepted by
then is at rest). Targets: read success >= 99.99 % overall; 0 uploads lost; the upload API answers
503 with Retry-After during a catalog or store outage, never 500; no 5xx at all in a rolling
restart; the scan is never skipped; a held image is never served.

    .venv/bin/python loadtest/faults.py [--photos 60] [--fault-seconds 15] [--json figures.json]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.cluster import AWS_ENV, Cluster  # noqa: E402
from edge.render import FAIL_TIMEOUT  # noqa: E402

PHOTO_DIRS = (Path("/usr/share/backgrounds"), Path("/usr/share/wallpapers"))
VARIANTS = ("w300", "w150", "w600", "sq150", "w1200", "sm150", "sq64", "w2400", "sq300", "sm64", "sm300",
            "original")
ACCEPT_MIX = (  # (header, share)
    ("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", 0.55),  # Chromium
    ("image/avif,image/webp,*/*", 0.15),  # Firefox
    ("image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", 0.08),  # Safari 16
    ("image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,"
     "image/*;q=0.8,*/*;q=0.5", 0.17),  # Safari 17
    ("*/*", 0.05),  # curl
)
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
RESTING = ("ready", "quarantined", "held")


def real_photos(count: int) -> list[Path]:
    found = sorted(p for d in PHOTO_DIRS if d.exists() for p in d.rglob("*")
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.stat().st_size > 50_000)
    if len(found) < count:
        raise SystemExit(f"only {len(found)} real photos under {PHOTO_DIRS}; install more wallpaper packages")
    return random.Random(5).sample(found, count)


def zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1 / (rank ** s) for rank in range(1, n + 1)]


@dataclass
class Read:
    at: float
    status: int
    seconds: float
    held: bool = False
    path: str = ""
    standin: bool = False  # answered from a smaller picture while the store was out of reach


@dataclass
class Upload:
    at: float
    malware: bool
    api_status: int = 0
    api_retry_after: str = ""
    accepted_at: float = 0.0  # S3 took the bytes
    image_id: str = ""
    final: str = ""
    reason: str = ""


@dataclass
class Phase:
    name: str
    start: float
    end: float = 0.0  # fault over (restored)
    recovered_at: float = 0.0


@dataclass
class Drill:
    cluster: Cluster
    photos: list[str]  # image ids, most popular first
    held: list[str]
    sources: list[Path]
    readers: int = 4
    upload_interval: float = 1.5
    reads: list[Read] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.cluster.api_key}"}

    # --- load ----------------------------------------------------------------------------------

    def reader(self, seed: int) -> None:
        rnd = random.Random(seed)
        session = requests.Session()
        image_weights, variant_weights = zipf_weights(len(self.photos)), zipf_weights(len(VARIANTS), 0.9)
        headers, shares = zip(*ACCEPT_MIX)
        etags: dict[str, str] = {}
        while not self.stop.is_set():
            held = self.held and rnd.random() < 0.01
            image_id = rnd.choice(self.held) if held else rnd.choices(self.photos, image_weights)[0]
            variant = rnd.choices(VARIANTS, variant_weights)[0]
            if variant != "original" and rnd.random() < 0.1:
                variant += rnd.choice((".webp", ".jpeg", ".avif"))
            path = f"/images/{image_id}/{variant}"
            accept = rnd.choices(headers, shares)[0]
            request_headers = {"Accept": accept}
            key = f"{path}|{accept}"
            if key in etags and rnd.random() < 0.2:
                request_headers["If-None-Match"] = etags[key]
            started, standin = time.monotonic(), False
            try:
                answer = session.get(self.cluster.edge_url + path, headers=request_headers, timeout=30)
                status = answer.status_code
                standin = answer.headers.get("Server-Timing") == "standin"
                if status == 200 and answer.headers.get("ETag") and not standin:
                    etags[key] = answer.headers["ETag"]
            except requests.RequestException:
                status = 0
            with self.lock:
                self.reads.append(Read(started, status, time.monotonic() - started, held, path, standin))
            time.sleep(0.005)

    def distinct_photo(self, rnd: random.Random) -> bytes:
        with Image.open(rnd.choice(self.sources)) as source:
            image = ImageOps.exif_transpose(source).convert("RGB")
        width, height = image.size
        scale = min(1.0, 1800 / max(width, height))
        crop_w, crop_h = int(width * rnd.uniform(0.6, 0.95)), int(height * rnd.uniform(0.6, 0.95))
        left, top = rnd.randint(0, width - crop_w), rnd.randint(0, height - crop_h)
        image = image.crop((left, top, left + crop_w, top + crop_h))
        image = image.resize((max(1, int(crop_w * scale)), max(1, int(crop_h * scale))))
        if rnd.random() < 0.5:
            image = ImageOps.mirror(image)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=rnd.randint(80, 92))
        return out.getvalue()

    def uploader(self) -> None:
        rnd = random.Random(11)
        n = 0
        while not self.stop.is_set():
            n += 1
            malware = n % 10 == 0
            data = self.distinct_photo(rnd)
            if malware:
                data = data[:-2] + EICAR + b"\xff\xd9"
            upload = Upload(time.monotonic(), malware)
            with self.lock:
                self.uploads.append(upload)
            try:
                answer = requests.post(f"{self.cluster.edge_url}/v1/uploads", json={"content_type": "image/jpeg"},
                                       headers=self.auth, timeout=30)
                upload.api_status = answer.status_code
                upload.api_retry_after = answer.headers.get("Retry-After", "")
                if answer.status_code == 201:
                    target = answer.json()
                    upload.image_id = target["id"]
                    sent = requests.post(target["url"], data=target["fields"],
                                         files={"file": ("upload.jpg", data, "image/jpeg")}, timeout=30)
                    if sent.status_code in (200, 201, 204):
                        upload.accepted_at = time.monotonic()
            except requests.RequestException:
                pass  # not accepted: the client knows and tries again later
            self.stop.wait(self.upload_interval)

    # --- state ---------------------------------------------------------------------------------

    def settle(self, uploads: list[Upload], timeout: float) -> bool:
        """Poll the accepted uploads until each is at rest; True if all are."""
        deadline = time.monotonic() + timeout
        pending = [u for u in uploads if u.accepted_at and u.final not in RESTING]
        while pending and time.monotonic() < deadline:
            for upload in pending:
                try:
                    answer = requests.get(f"{self.cluster.edge_url}/v1/images/{upload.image_id}", headers=self.auth,
                                          timeout=10)
                    if answer.status_code == 200:
                        info = answer.json()
                        upload.final, upload.reason = info["state"], info.get("reason") or ""
                except requests.RequestException:
                    pass
            pending = [u for u in pending if u.final not in RESTING]
            if pending:
                time.sleep(0.5)
        return not pending


# --- the faults ------------------------------------------------------------------------------

def wait_for_job(drill: Drill, timeout: float = 30) -> None:
    """Until some accepted upload is being worked on (so a killed worker dies mid-job)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with drill.lock:
            recent = [u for u in drill.uploads[-3:] if u.accepted_at]
        for upload in recent:
            try:
                state = requests.get(f"{drill.cluster.edge_url}/v1/images/{upload.image_id}", headers=drill.auth,
                                     timeout=5).json().get("state")
            except (requests.RequestException, ValueError):
                continue
            if state in ("validating", "moderating", "processing"):
                return
        time.sleep(0.05)


def rolling(cluster: Cluster) -> None:
    for name in [n for n in cluster.services if n.startswith("origin-")]:
        cluster.stop_service(name)
        cluster.start_service(name)
        time.sleep(FAIL_TIMEOUT + 0.5)  # the edge takes it back into the group


FAULTS = {  # name: (inject, restore)
    "origin-kill": (lambda d: d.cluster.kill("origin-1"), lambda d: d.cluster.start_service("origin-1")),
    "worker-kill": (lambda d: (wait_for_job(d), d.cluster.kill("worker-1")),
                    lambda d: d.cluster.start_service("worker-1")),
    "postgres-stop": (lambda d: d.cluster.stop_service("postgres"), lambda d: d.cluster.start_service("postgres")),
    "s3-cut": (lambda d: d.cluster.cut_s3(), lambda d: d.cluster.restore_s3()),
    "clamd-stop": (lambda d: d.cluster.stop_clamd(), lambda d: d.cluster.start_clamd()),
    "rolling": (lambda d: rolling(d.cluster), lambda d: None),
}


# --- figures ---------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(name: str, reads: list[Read], uploads: list[Upload], recover: float | None) -> dict:
    public = [r for r in reads if not r.held]
    ok = [r for r in public if r.status in (200, 304)]
    latencies = [r.seconds * 1000 for r in ok]
    accepted = [u for u in uploads if u.accepted_at]
    api: dict[str, int] = {}
    for upload in uploads:
        api[str(upload.api_status or "no answer")] = api.get(str(upload.api_status or "no answer"), 0) + 1
    return {
        "phase": name,
        "reads": len(public),
        "read_success": len(ok) / len(public) if public else 1.0,
        "read_failures": len(public) - len(ok),
        "read_5xx": sum(1 for r in public if r.status >= 500),
        "read_standins": sum(1 for r in public if r.standin),
        "read_p50_ms": round(pct(latencies, 0.50), 1),
        "read_p99_ms": round(pct(latencies, 0.99), 1),
        "held_served": sum(1 for r in reads if r.held and r.status == 200),
        "uploads_offered": len(uploads),
        "uploads_accepted": len(accepted),
        "uploads_at_rest": sum(1 for u in accepted if u.final in RESTING),
        "uploads_lost": sum(1 for u in accepted if u.final not in RESTING),
        "api": api,
        "api_500": sum(1 for u in uploads if u.api_status == 500),
        "api_503_without_retry_after": sum(1 for u in uploads if u.api_status == 503 and not u.api_retry_after),
        "recover_seconds": None if recover is None else round(recover, 1),
    }


def table(rows: list[dict]) -> str:
    head = (f"{'phase':14} {'reads':>7} {'success':>9} {'p50 ms':>7} {'p99 ms':>8} {'accepted':>8} {'at rest':>7} "
            f"{'lost':>4} {'recover s':>9}  upload API answers")
    lines = [head, "-" * len(head)]
    for r in rows:
        recover = "-" if r["recover_seconds"] is None else f"{r['recover_seconds']:.1f}"
        api = " ".join(f"{k}×{v}" for k, v in sorted(r["api"].items()))
        lines.append(f"{r['phase']:14} {r['reads']:>7} {100 * r['read_success']:>8.3f}% {r['read_p50_ms']:>7} "
                     f"{r['read_p99_ms']:>8} {r['uploads_accepted']:>8} {r['uploads_at_rest']:>7} "
                     f"{r['uploads_lost']:>4} {recover:>9}  {api}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--fault-seconds", type=float, default=15)
    parser.add_argument("--recover-seconds", type=float, default=10)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--dir", type=Path, help="keep the cluster's files here (default: a temp dir)")
    args = parser.parse_args()

    os.environ.update(AWS_ENV)  # this process writes the held images itself (seed_held)
    root = args.dir or Path(tempfile.mkdtemp(prefix="imagehost-faults-"))
    sources = real_photos(args.photos)
    print(f"faults: starting the cluster in {root} …", flush=True)
    cluster = Cluster(root, extra_env={"IMAGEHOST_JOB_LEASE_SECONDS": "20"}).start()
    try:
        return run(cluster, sources, args)
    finally:
        cluster.stop()


def run(cluster: Cluster, sources: list[Path], args) -> int:
    started = time.monotonic()
    photos = [line["id"] for line in cluster.ingest(*sources, timeout=1800)]
    held = seed_held(cluster, sources[:3])
    print(f"faults: {len(photos)} real photos ingested, {len(held)} held images, in "
          f"{time.monotonic() - started:.0f} s; warming part of the edge cache …", flush=True)
    drill = Drill(cluster, photos, held, sources, readers=args.readers)
    for image_id in photos[: len(photos) // 3]:  # a partly warm cache: the popular third, two variants
        for variant in ("w300", "sq150"):
            requests.get(f"{cluster.edge_url}/images/{image_id}/{variant}", headers={"Accept": ACCEPT_MIX[0][0]},
                         timeout=60)
    threads = [threading.Thread(target=drill.reader, args=(n,), daemon=True) for n in range(args.readers)]
    threads.append(threading.Thread(target=drill.uploader, daemon=True))
    for thread in threads:
        thread.start()
    phases = [Phase("steady", time.monotonic())]
    time.sleep(args.recover_seconds)
    phases[-1].end = phases[-1].recovered_at = time.monotonic()
    for name in args.faults.split(","):
        inject, restore = FAULTS[name]
        print(f"faults: {name} …", flush=True)
        phase = Phase(name, time.monotonic())
        phases.append(phase)
        inject(drill)
        time.sleep(args.fault_seconds)
        restore(drill)
        phase.end = time.monotonic()
        with drill.lock:
            backlog = [u for u in drill.uploads if u.accepted_at and u.accepted_at <= phase.end]
        drill.settle(backlog, timeout=240)
        phase.recovered_at = time.monotonic()
        time.sleep(max(0.0, args.recover_seconds - (phase.recovered_at - phase.end)))
    drill.stop.set()
    for thread in threads:
        thread.join(60)
    all_settled = drill.settle(drill.uploads, timeout=300)
    rows = []
    bounds = [p.start for p in phases[1:]] + [float("inf")]
    for phase, upper in zip(phases, bounds):
        reads = [r for r in drill.reads if phase.start <= r.at < upper]
        uploads = [u for u in drill.uploads if phase.start <= u.at < upper]
        recover = None if phase.name == "steady" else phase.recovered_at - phase.end
        rows.append(summarise(phase.name, reads, uploads, recover))
    overall = summarise("overall", drill.reads, drill.uploads, None)
    rows.append(overall)
    print()
    print(table(rows))
    standins = {r["phase"]: r["read_standins"] for r in rows[:-1] if r["read_standins"]}
    if standins:
        print("\nreads answered by a stand-in (a smaller picture, briefly cacheable, while the store was out of "
              "reach): " + ", ".join(f"{phase} {n}" for phase, n in standins.items()))
    failed = [(phase.name, r) for phase, upper in zip(phases, bounds)
              for r in drill.reads if phase.start <= r.at < upper and not r.held and r.status not in (200, 304)]
    for name, read in failed[:12]:
        print(f"  failed read ({name}): {read.status or 'no answer'} {read.path}")
    malware = [u for u in drill.uploads if u.accepted_at and u.malware]
    checks = {
        "read success >= 99.99 %": overall["read_success"] >= 0.9999,
        "0 uploads lost": overall["uploads_lost"] == 0 and all_settled,
        "no 500 from the upload API": overall["api_500"] == 0,
        "every 503 of the upload API has Retry-After": overall["api_503_without_retry_after"] == 0,
        "no 5xx during the rolling restart": all(r["read_5xx"] == 0 and not any(
            k.startswith("5") for k in r["api"]) for r in rows if r["phase"] == "rolling"),
        "scan never skipped (every EICAR upload quarantined for malware)": all(
            u.final == "quarantined" and u.reason == "malware" for u in malware),
        "a held image never served": overall["held_served"] == 0,
    }
    print()
    for what, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    print(f"\n  {len(malware)} EICAR uploads accepted; {overall['uploads_accepted']} uploads accepted in all; "
          f"drill {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"phases": rows, "checks": checks}, indent=2))
    return 0 if all(checks.values()) else 1


def seed_held(cluster: Cluster, sources: list[Path]) -> list[str]:
    """Images held for review (as a moderation score over the threshold leaves them): never public."""
    from origin.config import Settings
    from origin.ingest.originals import ingest
    from origin.ingest.validate import Limits
    from origin.wiring import open_catalog, open_store

    settings = Settings.from_env(cluster.env(cluster.root / "held"))
    store, catalog = open_store(settings), open_catalog(settings.catalog)
    held = []
    try:
        for path in sources:  # other bytes than the public copies: contents of their own
            with Image.open(path) as image:
                out = io.BytesIO()
                ImageOps.flip(image.convert("RGB")).save(out, "JPEG", quality=88)
            held.append(ingest(out.getvalue(), store, catalog, limits=Limits.from_settings(settings), state="held",
                               owner="operator").id)
        return held
    finally:
        catalog.close()


if __name__ == "__main__":
    sys.exit(main())
