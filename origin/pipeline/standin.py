"""Stand-ins: a requested variant rendered from a smaller picture of the same content, when the
source that should render it cannot be read.

Two callers:

  archived   its source waits for a restore (origin/pipeline/cold.py): the stand-in comes from
             another stored picture of the content, found by listing them
  outage     the store cannot be reached (an S3 outage, a cut network): the stand-in comes from a
             render intermediate this host holds locally (origin/ports/store_cache.py `local`).
             Every origin copies in the smallest render source of the images it serves, but the
             sources of the largest variants (the 2400-px rung, the original) are often not
             there: without a stand-in such a miss would be a 503 for as long as the outage lasts

A stand-in keeps the variant's shape (its width, its square, its preset's box and crop) within
the stand-in picture's own size: it is never upscaled, so a w2400 from the 1200-px rung is 1200
pixels wide. It is answered under a short cache lifetime and never stored: once the source can
be read again, the real render replaces it at the edge.
"""
from __future__ import annotations

import logging

import pyvips

from origin.errors import RenderFailed
from origin.pipeline import sources
from origin.pipeline.render import Encoding, RenderOptions, render
from origin.pipeline.request import VariantRequest

log = logging.getLogger("imagehost.standin")


def options(req: VariantRequest, fmt: str, width: int, height: int) -> RenderOptions:
    """The render options of `req` for a stand-in picture of width × height (never upscaled)."""
    if req.preset is not None:
        return RenderOptions.for_preset(req.preset, fmt, width, height)
    if req.kind in ("sq", "sm"):
        return RenderOptions(req.kind, min(req.size, width, height), fmt, width, height)
    kind = "full" if req.kind == "original" else req.kind
    return RenderOptions(kind, min(req.size or width, width), fmt, width, height)


def render_from(data: bytes, req: VariantRequest, fmt: str, encoding: Encoding) -> bytes:
    """`req` rendered from the picture `data` (pyvips.Error or RenderFailed if it will not decode)."""
    header = pyvips.Image.new_from_buffer(data, "")
    return render(data, options(req, fmt, header.width, header.height), encoding)


def local_rungs(pic: sources.Picture, opts: RenderOptions, sizes: tuple[int, ...]) -> list[sources.Source]:
    """The intermediates that do not serve `opts` (those that do were tried first), largest first:
    what can stand in for it during an outage, if this host holds a copy."""
    serving = {s.key for s in sources.choose(pic, opts, sizes)}
    return [s for s in reversed(sources.intermediates(pic, sizes)) if s.key not in serving]


def during_outage(store, pic: sources.Picture, req: VariantRequest, opts: RenderOptions, fmt: str,
                  sizes: tuple[int, ...], encoding: Encoding) -> tuple[bytes, str] | None:
    """(bytes, the stand-in's key) of `req` rendered from the largest intermediate this host holds
    that does not serve it; None when it holds none (or the store keeps no local copies)."""
    local = getattr(store, "local", None)
    if local is None or opts.animated:
        return None
    for source in local_rungs(pic, opts, sizes):
        data = local(source.key)
        if data is None:
            continue
        try:
            return render_from(data, req, fmt, encoding), source.key
        except (RenderFailed, pyvips.Error) as exc:  # a damaged local copy: the next one, or the 503
            log.warning("stand-in %s for %s failed: %s", source.key, req.name, exc)
    return None
