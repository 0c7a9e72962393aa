"""Quality by target, by measurement: bytes and SSIM of today's fixed qualities, of the qualities
chosen per picture (origin/pipeline/targeting.py) and of a plain baseline JPEG at equal measured
quality, on real photos, through the serving path.

    .venv/bin/python loadtest/bench_quality.py [--photos 48] [--widths 300,600,1200]
                                               [--prices ...] [--targets ...]
                                               [--efforts jpeg:1,avif:3,webp-deblock:1]

Each photo is ingested as the worker does (validation's decode -> the 1200- and 2400-px
intermediates, origin/ingest/originals.py), its qualities are searched once on the w600, w300 and
w150 samples of its smallest intermediate, and every width is rendered from the intermediate that
serves it (origin/pipeline/sources.py). SSIM (origin/pipeline/ssim.py) is taken against the photo
decoded in full and Lanczos-resized to the variant's size (tests/quality.py's reference).

    fixed           today's defaults: JPEG q82 effort 0 (optimised Huffman), WebP q80 effort 4,
                    AVIF q55 effort 2
    fixed+effort    the fixed qualities at the targeted rows' efforts (what the efforts alone do)
    targeted        the searched qualities (IMAGEHOST_QUALITY_PRICE and _TARGET) at --efforts
    baseline JPEG   libjpeg, baseline (no optimised tables, not progressive), 4:2:0, one quality
                    for every photo: at each width the quality (interpolated between two integer
                    ones) whose mean SSIM equals the row it is set against, "equal measured quality"

"No lower quality" is held width by width: a row's mean SSIM at each width at least the fixed row's.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import pyvips

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest.photos import PHOTOS  # noqa: E402
from origin.config import QUALITY_FLOOR, QUALITY_PRICE, Settings, quality_prices, quality_targets  # noqa: E402
from origin.ingest import originals  # noqa: E402
from origin.ingest.validate import Limits, validate  # noqa: E402
from origin.pipeline import sources, ssim, targeting  # noqa: E402
from origin.pipeline.render import Encoding, RenderOptions, colour, load, render  # noqa: E402

from tests import quality  # noqa: E402

WALLPAPERS = Path("/usr/share/wallpapers")  # plasma-workspace-wallpapers: photos, one per folder
GOALS = {"avif": 0.55, "webp": 0.70}  # targeted bytes / baseline JPEG bytes at equal measured quality
SAVING = 0.10  # targeted at least this much smaller than fixed, at no lower mean SSIM at any width
EFFORTS = "jpeg:1,avif:3,webp-deblock:1"  # IMAGEHOST_JPEG_EFFORT, _AVIF_EFFORT and _WEBP_DEBLOCK of the targeted rows
BASELINE_Q = (40, 98)


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


def efforts(text: str) -> dict[str, int]:
    """"jpeg:1,avif:3" -> each format's effort; "webp-deblock:1" -> WebP's autofilter (Encoding.webp_deblock)."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        fmt, _, value = part.partition(":")
        if fmt == "webp-deblock":
            out["webp_deblock"] = bool(int(value))
        elif fmt in ("jpeg", "webp", "avif", "jxl"):
            out[f"{fmt}_effort"] = int(value)
        else:
            raise SystemExit(f"--efforts: {fmt!r} is not a format or webp-deblock")
    return out


def measure(path: Path, widths: list[int], targets, prices, sizes, fixed: Encoding, tuned: Encoding, rows, pictures):
    """Adds (width, bytes, SSIM) to `rows` per row name, and each width's pixels and reference to
    `pictures` (the baseline JPEG's, encoded later); the search's result."""
    data = path.read_bytes()
    checked = validate(data, Limits(max_bytes=1 << 30), decode=True, decode_box=originals.decode_box(sizes))
    decoded = originals.prepare(data, checked.fmt, sizes, checked.decoded)
    header = decoded.header
    pic = sources.Picture("bench", checked.fmt, header.width, header.height, header.has_alpha, 1)
    smallest = decoded.intermediates.get(min(sizes)) or decoded.intermediates.get(None) or data
    chosen = targeting.choose(smallest, targets, tuned, prices)
    full = quality.full_decode(data)
    searched = sorted(set(targets) | set(prices), key=list(targeting.BOUNDS).index)
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
        def source(opts: RenderOptions):
            """(bytes, loader) of what serves `opts`: an intermediate or the original."""
            chosen_source = sources.choose(pic, opts, sizes)[0]
            if chosen_source.kind == "intermediate":
                return decoded.intermediates[chosen_source.rung], sources.load_intermediate
            return data, None
        for fmt in searched:
            opts = RenderOptions("w", width, fmt, header.width, header.height)
            blob, loader = source(opts)
            runs = [("targeted", tuned.with_qualities(targeting.for_width(chosen.qualities, width)))]
            if fmt != "jxl":
                differs = any(getattr(tuned, name, None) != getattr(fixed, name, None)
                              for name in (f"{fmt}_effort", f"{fmt}_deblock"))
                runs += [("fixed", fixed)] + ([("fixed+effort", tuned)] if differs else [])
            for kind, enc in runs:
                out = render(blob, opts, enc, loader)
                rows.setdefault(f"{kind} {fmt}", []).append((width, len(out), score(out, fmt)))
        opts = RenderOptions("w", width, "jpeg", header.width, header.height)  # the baseline's pixels, whatever is searched
        blob, loader = source(opts)
        pixels = colour((loader or load)(blob, opts), opts).copy_memory()
        dims = (pixels.width, pixels.height)
        reference = refs[dims] if dims in refs else ssim.luma(quality.reference(full, *dims))
        pictures.setdefault(width, []).append((pixels, reference))
    return chosen


def baseline_at(pictures, width: int, mean: float, cache: dict) -> float:
    """The bytes of the baseline JPEG of every picture at `width` whose mean SSIM equals `mean`,
    interpolated between the two integer qualities around it."""
    def at(q: int) -> tuple[int, float]:
        if (width, q) not in cache:
            results = [(len(out), ssim.ssim(targeting.decoded_luma(out, "jpeg"), ref))
                       for out, ref in ((baseline_jpeg(pixels, q), ref) for pixels, ref in pictures[width])]
            cache[(width, q)] = (sum(b for b, _ in results), statistics.mean(s for _, s in results))
        return cache[(width, q)]
    low, high = BASELINE_Q
    while high - low > 1:  # at(low) below `mean`, at(high) at or above it
        middle = (low + high) // 2
        if at(middle)[1] >= mean:
            high = middle
        else:
            low = middle
    (b0, s0), (b1, s1) = at(low), at(high)
    share = min(1.0, max(0.0, (mean - s0) / (s1 - s0))) if s1 > s0 else 1.0
    return b0 + share * (b1 - b0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--widths", default="300,600,1200")
    parser.add_argument("--prices", default=QUALITY_PRICE, help="IMAGEHOST_QUALITY_PRICE's syntax")
    parser.add_argument("--targets", default=QUALITY_FLOOR, help="IMAGEHOST_QUALITY_TARGET's syntax")
    parser.add_argument("--efforts", default=EFFORTS, help="the targeted rows' efforts: jpeg:1,avif:3,webp-deblock:1")
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    targets, prices = quality_targets(args.targets), quality_prices(args.prices)
    pyvips.cache_set_max(0)
    settings = Settings()
    fixed = Encoding.from_settings(settings)
    tuned = replace(fixed, **efforts(args.efforts))
    rows: dict[str, list[tuple[int, int, float]]] = {}
    pictures: dict[int, list] = {}
    search_ms, started = [], time.perf_counter()
    chosen_q: dict[str, list[int]] = {}  # at the w600 sample
    for n, path in enumerate(photos(args.photos), 1):
        chosen = measure(path, widths, targets, prices, settings.intermediate_sizes, fixed, tuned, rows, pictures)
        search_ms.append(chosen.ms)
        for fmt, q in targeting.for_width(chosen.qualities, 600).items():
            chosen_q.setdefault(fmt, []).append(q)
        name = path.parts[-4] if path.is_relative_to(WALLPAPERS) else path.stem
        print(f"  {n:>2} {name[:34]:<34} {chosen.to_json()} {chosen.ms:.0f} ms", flush=True)
    print(f"\n{args.photos} photos x widths {widths}, prices {args.prices or '-'}, floors {args.targets or '-'}, "
          f"efforts {args.efforts or '-'}, {time.perf_counter() - started:.0f} s")
    print(f"search at ingest: {statistics.mean(search_ms):.0f} ms per photo mean, "
          f"{statistics.median(search_ms):.0f} median, {max(search_ms):.0f} max (w600, w300 and w150 samples, all formats)")
    print("chosen qualities at w600: " + ", ".join(
        f"{fmt} {min(qs)}-{max(qs)} (median {statistics.median(qs):g})" for fmt, qs in chosen_q.items()))

    def stats(name: str, width: int | None = None) -> tuple[int, float, float]:
        values = [(b, s) for w, b, s in rows[name] if width is None or w == width]
        return sum(b for b, _ in values), statistics.mean(s for _, s in values), min(s for _, s in values)
    cache: dict = {}

    def vs_baseline(name: str) -> tuple[float, float]:
        """(row bytes / baseline bytes at equal mean SSIM width by width, the baseline's bytes)."""
        base = sum(baseline_at(pictures, w, stats(name, w)[1], cache) for w in widths if w in pictures)
        return stats(name)[0] / base, base
    print(f"\n{'output':<20}{'total kB':>10}{'mean SSIM':>11}{'min SSIM':>10}{'vs baseline':>13}"
          + "".join(f"{'w' + str(w) + ' kB / mean':>22}" for w in widths))
    order = ("jpeg", "webp", "avif", "jxl")
    for name in sorted(rows, key=lambda n: (order.index(n.split()[-1]), n)):
        total, mean, low = stats(name)
        ratio = vs_baseline(name)[0]
        per = "".join(f"{stats(name, w)[0] / 1000:>12.0f} / {stats(name, w)[1]:.4f}" for w in widths if w in pictures)
        print(f"{name:<20}{total / 1000:>10.0f}{mean:>11.4f}{low:>10.4f}{ratio:>11.3f} x{per}")
    print()
    verdicts = []
    for fmt, goal in GOALS.items():
        if f"targeted {fmt}" not in rows:
            continue
        ratio, base = vs_baseline(f"targeted {fmt}")
        ok = ratio <= goal
        verdicts.append(ok)
        print(f"{'PASS' if ok else 'MISS'}  targeted {fmt} {ratio:.3f} x a baseline JPEG of the same mean SSIM at each "
              f"width ({base / 1000:.0f} kB; goal <= {goal})")
    for fmt in ("jpeg", "webp", "avif"):
        if f"targeted {fmt}" not in rows:
            continue
        t_total, _, t_min = stats(f"targeted {fmt}")
        f_total, _, f_min = stats(f"fixed {fmt}")
        lower = [w for w in widths if w in pictures
                 and stats(f"targeted {fmt}", w)[1] < stats(f"fixed {fmt}", w)[1]]
        ok = t_total <= (1 - SAVING) * f_total and not lower
        verdicts.append(ok)
        print(f"{'PASS' if ok else 'MISS'}  targeted {fmt} {(1 - t_total / f_total) * 100:.1f} % fewer bytes than "
              f"fixed (goal >= {SAVING * 100:.0f} %), mean SSIM " + ", ".join(
                  f"w{w} {stats(f'targeted {fmt}', w)[1]:.4f} vs {stats(f'fixed {fmt}', w)[1]:.4f}"
                  for w in widths if w in pictures)
              + (f" (lower at {lower})" if lower else "") + f", min {t_min:.4f} vs {f_min:.4f}")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
