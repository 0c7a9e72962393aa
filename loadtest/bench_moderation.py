"""Moderation models on every real photo available here: benign share held, CPU per image, RSS.

    .venv/bin/python loadtest/bench_moderation.py [--models open_nsfw,nudenet] [--threshold T]

Photos: every JPEG/PNG/WebP under /usr/share/backgrounds and /usr/share/wallpapers (Debian's
wallpaper packages: mate-backgrounds, gnome-backgrounds, plasma-workspace-wallpapers,
lomiri-wallpapers, sway-backgrounds, …), exact duplicates dropped. All are benign, so every
held photo is a false positive.

Each model runs in a child process of its own, as a worker does (one onnxruntime intra-op
thread), which reports: RSS with libvips loaded and no model (the baseline), RSS once the model
is loaded, peak RSS after scoring every photo; and per photo the CPU time of the model's full
scoring and, interleaved photo by photo with it, of the baseline: the same libvips decode alone.
`nudenet` needs the opt-in extra (pip install 'imagehost[nudenet]').
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PHOTO_ROOTS = (Path("/usr/share/backgrounds"), Path("/usr/share/wallpapers"))
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
CURVE = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def photos() -> list[Path]:
    seen, found = set(), []
    for root in PHOTO_ROOTS:
        for path in sorted(root.rglob("*")) if root.is_dir() else ():
            if path.suffix.lower() in SUFFIXES and path.is_file() and not path.is_symlink():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                if digest not in seen:
                    seen.add(digest)
                    found.append(path)
    return found


def child(model: str, paths: list[str]) -> dict:
    """Runs in the child: load, then score every photo, interleaving the decode-only baseline."""
    import resource
    import time

    import pyvips  # noqa: F401  (the baseline RSS includes libvips, as a worker's does)

    from origin.pipeline.render import configure_libvips
    from origin.ports.moderation_pixels import thumbnail
    from origin.wiring import open_moderator

    configure_libvips()

    def rss() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    thumbnail(Path(paths[0]).read_bytes(), 64)  # libvips' own start-up is not the model's
    before = rss()
    moderator = open_moderator(model, threads=1).load()
    loaded = rss()
    decode_size = 512 if model == "open_nsfw" else 320
    scores, model_cpu, decode_cpu = [], [], []
    for path in paths:
        data = Path(path).read_bytes()
        start = time.process_time()
        thumbnail(data, decode_size, force=model == "open_nsfw").write_to_memory()
        decode_cpu.append(time.process_time() - start)
        start = time.process_time()
        scores.append(moderator.score(data).score)
        model_cpu.append(time.process_time() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"model": moderator.model, "scores": scores, "model_cpu": model_cpu, "decode_cpu": decode_cpu,
            "rss_before": before, "rss_loaded": loaded, "rss_peak": peak}


def run_child(model: str, paths: list[Path]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, __file__, "--child", model], input=json.dumps([str(p) for p in paths]),
                          capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{model}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="open_nsfw")
    parser.add_argument("--threshold", type=float, default=None, help="default: IMAGEHOST_NSFW_THRESHOLD's default")
    parser.add_argument("--child", default="")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, json.loads(sys.stdin.read()))))
        return
    from origin.config import Settings

    threshold = args.threshold if args.threshold is not None else Settings().nsfw_threshold
    paths = photos()
    megapixels = []
    import pyvips

    for path in paths:
        header = pyvips.Image.new_from_file(str(path))
        megapixels.append(header.width * header.height / 1e6)
    print(f"{len(paths)} distinct benign photos from {', '.join(str(r) for r in PHOTO_ROOTS)}: "
          f"{min(megapixels):.1f}-{max(megapixels):.1f} MP, median {median(megapixels):.1f} MP")
    results = {name: run_child(name, paths) for name in args.models.split(",")}
    if len(results) > 1:
        results["max(" + ",".join(results) + ")"] = {
            "model": "max of the scores", "scores": [max(s) for s in zip(*(r["scores"] for r in results.values()))],
            "model_cpu": [sum(c) for c in zip(*(r["model_cpu"] for r in results.values()))],
            "decode_cpu": [0.0] * len(paths), "rss_before": 0, "rss_loaded": 0, "rss_peak": 0}
    print(f"\nat threshold {threshold:g} (held: score > threshold; every photo here is benign)")
    print(f"{'model':<34} {'held':>10} {'p50':>7} {'p99':>7} {'max':>7} {'CPU ms':>7} {'decode ms':>9} "
          f"{'RSS MB: no model':>16} {'loaded':>7} {'peak':>6}")
    for name, r in results.items():
        scores = r["scores"]
        held = sum(s > threshold for s in scores)
        print(f"{r['model']:<34} {held:>3}/{len(scores):<3}{100 * held / len(scores):>4.1f}% "
              f"{median(scores):>7.4f} {quantile(scores, 0.99):>7.4f} {max(scores):>7.4f} "
              f"{1000 * median(r['model_cpu']):>7.1f} {1000 * median(r['decode_cpu']):>9.1f} "
              f"{r['rss_before'] / 1e6:>16.0f} {r['rss_loaded'] / 1e6:>7.0f} {r['rss_peak'] / 1e6:>6.0f}")
    print("\nCPU ms: median per photo of the whole scoring (decode + model), one thread; decode ms: the same "
          "libvips decode alone, measured photo by photo between them (the baseline)")
    print("\nthreshold curve: share of these benign photos held")
    print(f"{'threshold':>9} " + " ".join(f"{name[:24]:>24}" for name in results))
    for t in CURVE:
        cells = []
        for r in results.values():
            held = sum(s > t for s in r["scores"])
            cells.append(f"{held:>4} ({100 * held / len(r['scores']):>5.1f} %)".rjust(24))
        print(f"{t:>9.2f} " + " ".join(cells))
    worst = sorted(zip(next(iter(results.values()))["scores"], paths), reverse=True)[:5]
    print("\nhighest scores (" + next(iter(results)) + "): " +
          ", ".join(f"{s:.3f} {p.relative_to(p.parents[1])}" for s, p in worst))


if __name__ == "__main__":
    main()
