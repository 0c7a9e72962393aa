"""SSIM (Wang, Bovik, Sheikh & Simoncelli 2004) of two pictures, as the quality target measures it.

The luma (Rec. 601, libvips' "b-w"), Gaussian window sigma 1.5, K1 = 0.01, K2 = 0.03, the mean
over the picture less a 5-pixel border; 1.0 means identical. The same definition as the
render-quality gate's (tests/quality.py), so a target met here is met there.
"""
from __future__ import annotations

import numpy as np
import pyvips
from scipy.ndimage import gaussian_filter

BORDER = 5


def luma(image: pyvips.Image) -> np.ndarray:
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if image.interpretation not in ("b-w", "grey16"):
        image = image.colourspace("b-w")
    image = image.extract_band(0).cast("float")
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.float32, shape=(image.height, image.width))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        raise ValueError(f"SSIM of pictures of different sizes: {a.shape} and {b.shape}")
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x):
        return gaussian_filter(x, 1.5, truncate=3.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    inner = index[BORDER:-BORDER, BORDER:-BORDER] if min(index.shape) > 4 * BORDER else index
    return float(inner.mean())
