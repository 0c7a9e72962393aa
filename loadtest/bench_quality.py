"""Quality by target, by measurement: bytes and SSIM of today's fixed qualities, of the qualities
chosen per picture to a target (origin/pipeline/targeting.py) and of a plain baseline JPEG at equal
measured quality, on real photos, through the serving path.

    .venv/bin/python loadtest/bench_quality.py [--photos 48] [--widths 300,600,1200] [--targets ...]

Each photo is ingested as the worker does (validation's decode -> the 1200- and 2400-px
intermediates, origin/ingest/originals.py), its qualities are searched once on the w600, w300 and
w150 samples of its smallest intermediate, and every width is rendered from the intermediate that serves it
(origin/pipeline/sources.py). SSIM (origin/pipeline/ssim.py) is taken against the photo decoded
in full and Lanczos-resized to the variant's size (tests/quality.py's reference).

    baseline JPEG   libjpeg, baseline (no optimize_coding, no progressive), 4:2:0, its Q chosen per
                    photo by the same search to the same SSIM target as the format it is compared
                    with: "equal measured quality"
    fixed           today's defaults: JPEG q82 (optimised Huffman), WebP q80 effort 4, AVIF q55 effort 2
    targeted        the searched qualities (JPEG, WebP, AVIF, JPEG XL at libjxl effort 5)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pyvips

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest.photos import PHOTOS  # noqa: E402
from origin.config import QUALITY_FLOOR, Settings, quality_targets  # noqa: E402
from origin.ingest import originals  # noqa: E402
from origin.ingest.validate import Limits, validate  # noqa: E402
from origin.pipeline import sources, ssim, targeting  # noqa: E402
from origin.pipeline.render import Encoding, RenderOptions, colour, render  # noqa: E402

from tests import quality  # noqa: E402

# the measured floor (origin/config.py), and JPEG XL's target (searched only where named)
BENCH_TARGETS = QUALITY_FLOOR + ",jxl:0.968"

WALLPAPERS = Path("/usr/share/wallpapers")  # plasma-workspace-wallpapers: photos, one per folder
GOALS = {"avif": 0.55, "webp": 0.70}  # targeted bytes / baseline JPEG bytes at equal measured quality
SAVING = 0.10  # targeted at least this much smaller than fixed, at no lower mean SSIM


def photos(count: int) -> list[Path]:
    found = list(PHOTOS)
    for folder in sorted(WALLPAPERS.glob("*/contents/images")):
        biggest = max(folder.glob("*.jpg"), key=lambda p: p.stat().st_size, default=None)
        if biggest is not None and biggest.stat().st_size > 150_000:
            found.append(biggest)
    if len(found) < count and count != 0:
        raise SystemExit(f"only {len(found)} photos; install the Makefile's TEST_PACKAGES")
    return found[:count]


def baseline_jpeg(image: pyvips.Image, q: int) -> bytes:
    return image.jpegsave_buffer(Q=q, optimize_coding=False, interlace=False, subsample_mode="on", keep="icc")


def baseline_qualities(source: bytes, target: float) -> dict[int, int]:
    """The baseline JPEG's Q for one photo and each sample width: the same search as the origin's."""
    out: dict[int, int] = {}
    for width in targeting.SAMPLE_WIDTHS:
        picture = targeting.sample(source, width)
        low = out[min(out)] if out else None
        out[width], _ = targeting.search(picture, "jpeg", target, low=low, encoder=baseline_jpeg)
    return out


def measure(path: Path, widths: list[int], targets: dict[str, float], sizes: tuple[int, ...], fixed: Encoding):
    """{row name: [(bytes, ssim) per width]}, the search's ms."""
    data = path.read_bytes()
    checked = validate(data, Limits(max_bytes=1 << 30), decode=True, decode_box=originals.decode_box(sizes))
    decoded = originals.prepare(data, checked.fmt, sizes, checked.decoded)
    header = decoded.header
    pic = sources.Picture("bench", checked.fmt, header.width, header.height, header.has_alpha, 1)
    smallest = decoded.intermediates.get(min(sizes)) or decoded.intermediates.get(None) or data
    chosen = targeting.choose(smallest, targets, fixed)
    base_q = {t: baseline_qualities(smallest, t) for t in sorted(set(targets.values()))}
    full = quality.full_decode(data)
    rows: dict[str, list[tuple[int, float]]] = {}
    for width in widths:
        if width > header.width:
            continue
        refs: dict[tuple[int, int], object] = {}

        def score(out: bytes, fmt: str) -> float:
            picture = targeting.decoded_luma(out, fmt)
            dims = (picture.shape[1], picture.shape[0])
            if dims not in refs:
                refs[dims] = ssim.luma(quality.reference(full, *dims))
            return ssim.ssim(picture, refs[dims])
        for fmt in ("jpeg", "webp", "avif", "jxl"):
            opts = RenderOptions("w", width, fmt, header.width, header.height)
            source = sources.choose(pic, opts, sizes)[0]
            blob = decoded.intermediates[source.rung] if source.kind == "intermediate" else data
            loader = sources.load_intermediate if source.kind == "intermediate" else None
            targeted = fixed.with_qualities(targeting.for_width(chosen.qualities, width))
            runs = [("targeted", targeted)] + ([("fixed", fixed)] if fmt != "jxl" else [])
            for kind, enc in runs:
                out = render(blob, opts, enc, loader)
                rows.setdefault(f"{kind} {fmt}", []).append((len(out), score(out, fmt)))
            if fmt == "jpeg":
                pixels = colour((loader or _load)(blob, opts), opts).copy_memory()
                for t, ladder in base_q.items():
                    out = baseline_jpeg(pixels, targeting.for_width({w: {"jpeg": q} for w, q in ladder.items()},
                                                                     width)["jpeg"])
                    rows.setdefault(f"baseline jpeg@{t}", []).append((len(out), score(out, "jpeg")))
    return rows, chosen


def _load(data, opts):
    from origin.pipeline.render import load
    return load(data, opts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--widths", default="300,600,1200")
    parser.add_argument("--targets", default=BENCH_TARGETS, help="IMAGEHOST_QUALITY_TARGET's syntax")
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    targets = quality_targets(args.targets)
    pyvips.cache_set_max(0)
    settings = Settings()
    fixed = Encoding.from_settings(settings)
    totals: dict[str, list[tuple[int, float]]] = {}
    search_ms, started = [], time.perf_counter()
    chosen_q: dict[str, list[int]] = {}  # at the w600 sample
    for n, path in enumerate(photos(args.photos), 1):
        rows, chosen = measure(path, widths, targets, settings.intermediate_sizes, fixed)
        search_ms.append(chosen.ms)
        for fmt, q in targeting.for_width(chosen.qualities, 600).items():
            chosen_q.setdefault(fmt, []).append(q)
        for name, values in rows.items():
            totals.setdefault(name, []).extend(values)
        name = path.parts[-4] if path.is_relative_to(WALLPAPERS) else path.stem
        print(f"  {n:>2} {name[:34]:<34} {chosen.to_json()} {chosen.ms:.0f} ms", flush=True)
    print(f"\n{args.photos} photos x widths {widths} ({len(totals['fixed jpeg'])} renders per row), "
          f"targets {args.targets}, {time.perf_counter() - started:.0f} s")
    print(f"search at ingest: {statistics.mean(search_ms):.0f} ms per photo mean, "
          f"{statistics.median(search_ms):.0f} median, {max(search_ms):.0f} max (w600, w300 and w150 samples, all formats)")
    print("chosen qualities at w600: " + ", ".join(
        f"{fmt} {min(qs)}-{max(qs)} (median {statistics.median(qs):g})" for fmt, qs in chosen_q.items()))
    print(f"\n{'output':<22}{'total kB':>10}{'mean SSIM':>11}{'min SSIM':>10}{'vs baseline':>13}")
    summary = {}
    for name, values in totals.items():
        total, scores = sum(b for b, _ in values), [s for _, s in values]
        summary[name] = (total, statistics.mean(scores), min(scores))
    for name in sorted(summary, key=lambda n: (n.split()[-1].split("@")[0], n)):
        total, mean, low = summary[name]
        fmt = name.split()[-1].split("@")[0]
        base = summary.get(f"baseline jpeg@{targets.get(fmt, 0)}") if fmt in targets else None
        ratio = f"{total / base[0]:.3f} x" if base and not name.startswith("baseline") else ""
        print(f"{name:<22}{total / 1000:>10.0f}{mean:>11.4f}{low:>10.4f}{ratio:>13}")
    print()
    verdicts = []
    for fmt, goal in GOALS.items():
        total, mean, _ = summary[f"targeted {fmt}"]
        base = summary[f"baseline jpeg@{targets[fmt]}"]
        ok = total <= goal * base[0] and mean >= base[1] - 0.001
        verdicts.append(ok)
        print(f"{'PASS' if ok else 'MISS'}  targeted {fmt} {total / base[0]:.3f} x baseline JPEG (goal <= {goal}), "
              f"mean SSIM {mean:.4f} vs {base[1]:.4f}")
    for fmt in ("jpeg", "webp", "avif"):
        t_total, t_mean, t_min = summary[f"targeted {fmt}"]
        f_total, f_mean, f_min = summary[f"fixed {fmt}"]
        ok = t_total <= (1 - SAVING) * f_total and t_mean >= f_mean
        verdicts.append(ok)
        print(f"{'PASS' if ok else 'MISS'}  targeted {fmt} {(1 - t_total / f_total) * 100:.1f} % fewer bytes than "
              f"fixed (goal >= {SAVING * 100:.0f} %), mean SSIM {t_mean:.4f} vs {f_mean:.4f}, "
              f"min {t_min:.4f} vs {f_min:.4f}")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
