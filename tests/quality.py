"""Image quality for the render-quality gate: SSIM (Wang, Bovik, Sheikh & Simoncelli 2004), as
origin/pipeline/ssim.py defines it.

SSIM of the luma (Rec. 601, as libvips' "b-w"), Gaussian window sigma 1.5, K1 = 0.01,
K2 = 0.03, the mean over the picture less a 5-pixel border. 1.0 means identical.

The reference for a variant is made the slow, careful way: the original decoded in
full (no shrink-on-load), rotated upright, resized to the variant's exact dimensions
with a Lanczos-3 kernel in one step (no block shrink first: gap=0).
"""
from __future__ import annotations

import pyvips

from origin.pipeline.ssim import luma, ssim  # noqa: F401  (the one definition, the quality target's too)


def full_decode(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "").autorot().copy_memory()


def reference(full: pyvips.Image, width: int, height: int, crop: str | None = None) -> pyvips.Image:
    """`full` Lanczos-resized to width × height; with crop="centre", resized until its short side is
    the square's and the centre cut out (the order libvips' thumbnail crops in)."""
    if crop != "centre":
        return full.resize(width / full.width, vscale=height / full.height, kernel="lanczos3", gap=0)
    scale = width / min(full.width, full.height)
    resized = full.resize(scale, kernel="lanczos3", gap=0)
    return resized.crop((resized.width - width) // 2, (resized.height - height) // 2, width, height)


def score(variant: bytes, ref: pyvips.Image) -> float:
    return ssim(luma(pyvips.Image.new_from_buffer(variant, "")), luma(ref))
