"""The cost of each ingest stage on one core: the pipeline's own functions, one after the other, on one upload.

What the worker does to an upload, in its order (origin/ingest/worker.py): SHA-256, the header
checks, the one decode (into the largest intermediate; HEIC and JPEG XL: pillow-heif's or libjxl's decode
and the master),
the intermediates, the malware scan (clamd, INSTREAM), moderation (the default model on the smallest
intermediate), metadata, the pHash, each eager thumbnail, and the store writes. The sum is the
CPU an upload costs; `cores / sum` uploads per second is the pipeline's limit on this machine.
"""
from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

from origin import keys
from origin.config import Settings
from origin.ingest import originals, process
from origin.ingest.validate import Limits, validate
from origin.pipeline import sources
from origin.pipeline.render import Encoding, RenderOptions, colour, encode


def clamd_cpu(socket_path: str) -> float:
    """CPU seconds the clamd serving `socket_path` has used (the scan runs in that process, not this one)."""
    import os
    from pathlib import Path

    conf_dir = str(Path(socket_path).parent)
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "clamd" in command and conf_dir in command:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick
    return 0.0


def _timed(costs: OrderedDict, name: str, fn):
    started = time.process_time()
    wall = time.perf_counter()
    out = fn()
    # CPU of this thread's process; libvips and onnxruntime may use helper threads (counted too)
    costs[name] = costs.get(name, 0.0) + max(time.process_time() - started, 0.0)
    costs.setdefault("_wall", 0.0)
    costs["_wall"] += time.perf_counter() - wall
    return out


def stage_costs(data: bytes, settings: Settings, scanner, moderator, store, clamd_socket: str = "") -> OrderedDict:
    """{stage: CPU seconds} for one upload through the worker's steps (store writes to `store`)."""
    costs: OrderedDict = OrderedDict()
    limits = Limits.from_settings(settings)
    sizes = settings.intermediate_sizes
    _timed(costs, "sha-256", lambda: hashlib.sha256(data).hexdigest())
    checked = _timed(costs, "header checks", lambda: validate(data, limits, decode=False))
    fmt = checked.fmt
    if fmt in originals.NEEDS_MASTER:
        decoded = _timed(costs, "decode (pillow-heif, libjxl) + master + intermediates",
                         lambda: originals.prepare(data, fmt, sizes))
    else:
        checked = _timed(costs, "decode (the one full decode)", lambda: validate(
            data, limits, decode=True, decode_box=originals.decode_box(sizes)))
        header = originals.read_header(data, fmt)
        pic = sources.Picture("-", fmt, header.width, header.height, header.has_alpha, header.pages)
        made = _timed(costs, "intermediates (each rung resized from the one above, q97)",
                      lambda: sources.rungs(checked.decoded, pic, sizes))
        decoded = originals.Decoded(header, None, made)
    header = decoded.header
    before = clamd_cpu(clamd_socket)
    _timed(costs, "malware scan (clamd)", lambda: scanner.scan(data))
    costs["malware scan (clamd)"] += clamd_cpu(clamd_socket) - before  # clamd's own CPU
    smallest = decoded.intermediates[min(decoded.intermediates, key=lambda r: r or 10 ** 9)] \
        if decoded.intermediates else (decoded.master or data)
    _timed(costs, "moderation (model)", lambda: moderator.score(smallest))
    _timed(costs, "metadata", lambda: process.metadata(data, fmt, header.width, header.height, decoded.master or data))
    base = _timed(costs, "pHash decode (smallest intermediate)",
                  lambda: process.upright_base(smallest, header.width, header.height, max(settings.thumb_sizes)))
    _timed(costs, "pHash", lambda: process.perceptual_hash(base))
    encoding = Encoding.from_settings(settings)
    side = min(base.width, base.height)
    crops = {"sq": base.crop((base.width - side) // 2, (base.height - side) // 2, side, side)}
    crops["sm"] = _timed(costs, "smart crop (attention)", lambda: base.smartcrop(side, side, interesting="attention"))
    thumbs = {}
    for kind, square in crops.items():
        for size in settings.thumb_sizes:
            scaled = square if size >= side else square.resize(size / side)
            for out in process.THUMB_FORMATS:
                opts = RenderOptions(kind, size, out, header.width, header.height)
                thumbs[f"{kind}{size}.{out}"] = _timed(costs, f"thumbnail {out}",
                                                       lambda: encode(colour(scaled, opts), opts, encoding))
    objects = [(keys.source_key("bench", fmt), data)] + [
        (keys.intermediate_key("bench", header.has_alpha, r), b) for r, b in decoded.intermediates.items()] + [
        (f"images/bench/{name}", blob) for name, blob in thumbs.items()]
    if decoded.master:
        objects.append((keys.master_key("bench", header.has_alpha), decoded.master))
    _timed(costs, "store writes (fsync)", lambda: [store.put(k, b, "") for k, b in objects])
    store.delete_prefix("images/bench/")
    return costs
