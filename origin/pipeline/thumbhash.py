"""ThumbHash: a ~20-30 byte placeholder of a picture, and the small picture decoded from it.

An independent NumPy port of Evan Wallace's reference algorithm (https://github.com/evanw/thumbhash,
MIT licence; the byte layout is his, so a hash made here decodes with any ThumbHash decoder, the
JavaScript one in a page included). The picture is converted to LPQA (luminance, yellow-blue,
red-green, alpha), each channel is reduced to a few low-frequency cosine (DCT) terms, and the terms
are quantised to 4 bits each behind a 5-byte header (6 with alpha) that also carries the aspect.

    encode(rgba)                  (h, w, 4) uint8, at most 100×100 px → hash bytes
    decode(hash, width, height)   → (height, width, 4) uint8; the size defaults to the hash's
                                  approximate aspect with a 32-px long side
    average(hash)                 (r, g, b, a) in 0..1
    aspect(hash)                  the width / height the hash itself records (coarse: 1..7 / 1..7)
    has_alpha(hash)
"""
from __future__ import annotations

import numpy as np

MAX_SIDE = 100  # the encoder's input limit: larger pictures cost time for no better hash
LONG_SIDE = 32  # the decoded picture's long side by default


def _round(value: float) -> int:
    return int(np.floor(value + 0.5))  # JavaScript's Math.round (half up), which the layout was made with


def _terms(nx: int, ny: int):
    """The (cx, cy) terms of a channel with nx × ny, in the layout's order (row by row, a triangle)."""
    return [(cx, cy) for cy in range(ny) for cx in range(nx) if cx * ny < nx * (ny - cy)]


def _basis(n: int, count: int, size: int) -> np.ndarray:
    """cos(π/size · c · (i + 0.5)) for c < count, i < size: shape (count, size)."""
    return np.cos(np.pi / size * np.arange(count)[:, None] * (np.arange(size)[None, :] + 0.5))


def _encode_channel(channel: np.ndarray, nx: int, ny: int) -> tuple[float, list[float], float]:
    h, w = channel.shape
    coefficients = _basis(ny, ny, h) @ channel @ _basis(nx, nx, w).T / (w * h)  # (ny, nx)
    dc, ac = 0.0, []
    for cx, cy in _terms(nx, ny):
        if cx or cy:
            ac.append(float(coefficients[cy, cx]))
        else:
            dc = float(coefficients[0, 0])
    scale = max((abs(f) for f in ac), default=0.0)
    if scale:
        ac = [0.5 + 0.5 / scale * f for f in ac]
    return dc, ac, scale


def encode(rgba: np.ndarray) -> bytes:
    """The ThumbHash of an sRGB picture with straight alpha: `rgba` is (h, w, 4) uint8, both sides ≤ 100."""
    h, w = rgba.shape[:2]
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE) or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"a ThumbHash is made from at most {MAX_SIDE}×{MAX_SIDE} RGBA pixels, not {rgba.shape}")
    pixels = rgba.astype(np.float64) / 255.0
    alpha = pixels[..., 3]
    total_alpha = float(alpha.sum())
    average = (pixels[..., :3] * alpha[..., None]).sum(axis=(0, 1)) / total_alpha if total_alpha else np.zeros(3)
    has_alpha = total_alpha < w * h
    l_limit = 5 if has_alpha else 7  # fewer luminance terms when alpha needs the room
    lx = max(1, _round(l_limit * w / max(w, h)))
    ly = max(1, _round(l_limit * h / max(w, h)))
    # composite atop the average colour, then RGB → LPQ
    rgb = average * (1 - alpha[..., None]) + pixels[..., :3] * alpha[..., None]
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    l_dc, l_ac, l_scale = _encode_channel((r + g + b) / 3, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _encode_channel((r + g) / 2 - b, 3, 3)
    q_dc, q_ac, q_scale = _encode_channel(r - g, 3, 3)
    landscape = w > h
    header24 = (_round(63 * l_dc) | (_round(31.5 + 31.5 * p_dc) << 6) | (_round(31.5 + 31.5 * q_dc) << 12)
                | (_round(31 * l_scale) << 18) | (int(has_alpha) << 23))
    header16 = ((ly if landscape else lx) | (_round(63 * p_scale) << 3) | (_round(63 * q_scale) << 9)
                | (int(landscape) << 15))
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    channels = [l_ac, p_ac, q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = _encode_channel(alpha, 5, 5)
        out.append(_round(15 * a_dc) | (_round(15 * a_scale) << 4))
        channels.append(a_ac)
    nibbles = [_round(15 * f) for ac in channels for f in ac]
    nibbles += [0] * (len(nibbles) % 2)
    out += [low | (high << 4) for low, high in zip(nibbles[0::2], nibbles[1::2])]
    return bytes(out)


def has_alpha(hash_: bytes) -> bool:
    return bool(hash_[2] & 0x80)


def aspect(hash_: bytes) -> float:
    """Width / height as the hash records it (its luminance terms across and down: coarse)."""
    alpha, landscape = has_alpha(hash_), bool(hash_[4] & 0x80)
    lx = (5 if alpha else 7) if landscape else hash_[3] & 7
    ly = hash_[3] & 7 if landscape else (5 if alpha else 7)
    return lx / ly


def _header(hash_: bytes):
    if len(hash_) < 5:
        raise ValueError("a ThumbHash has at least 5 bytes")
    header24 = hash_[0] | (hash_[1] << 8) | (hash_[2] << 16)
    header16 = hash_[3] | (hash_[4] << 8)
    return header24, header16


def average(hash_: bytes) -> tuple[float, float, float, float]:
    header24, _ = _header(hash_)
    l = (header24 & 63) / 63
    p = ((header24 >> 6) & 63) / 31.5 - 1
    q = ((header24 >> 12) & 63) / 31.5 - 1
    a = (hash_[5] & 15) / 15 if has_alpha(hash_) else 1.0
    b = l - 2 / 3 * p
    r = (3 * l - b + q) / 2
    g = r - q
    return tuple(float(min(1.0, max(0.0, v))) for v in (r, g, b)) + (a,)


def default_size(hash_: bytes) -> tuple[int, int]:
    ratio = aspect(hash_)
    return ((LONG_SIDE, _round(LONG_SIDE / ratio)) if ratio > 1 else (_round(LONG_SIDE * ratio), LONG_SIDE))


def decode(hash_: bytes, width: int | None = None, height: int | None = None) -> np.ndarray:
    """The picture a hash describes, (height, width, 4) uint8. The cosine terms are continuous, so it
    can be drawn at any size: give the picture's own size (scaled down) for its exact aspect."""
    header24, header16 = _header(hash_)
    if width is None or height is None:
        width, height = default_size(hash_)
    alpha = bool(header24 >> 23)
    landscape = bool(header16 >> 15)
    l_dc = (header24 & 63) / 63
    p_dc = ((header24 >> 6) & 63) / 31.5 - 1
    q_dc = ((header24 >> 12) & 63) / 31.5 - 1
    l_scale = ((header24 >> 18) & 31) / 31
    p_scale = ((header16 >> 3) & 63) / 63
    q_scale = ((header16 >> 9) & 63) / 63
    lx = max(3, (5 if alpha else 7) if landscape else header16 & 7)
    ly = max(3, header16 & 7 if landscape else (5 if alpha else 7))
    a_dc = (hash_[5] & 15) / 15 if alpha else 1.0
    a_scale = (hash_[5] >> 4) / 15 if alpha else 0.0
    start = 6 if alpha else 5
    nibbles = [n for byte in hash_[start:] for n in (byte & 15, byte >> 4)]
    position = 0

    def channel(nx: int, ny: int, dc: float, scale: float) -> np.ndarray:
        nonlocal position
        fx, fy = _basis(nx, nx, width), _basis(ny, ny, height)  # (nx, width), (ny, height)
        terms = np.zeros((ny, nx))
        for cx, cy in _terms(nx, ny):
            if not (cx or cy):
                continue
            nibble = nibbles[position] if position < len(nibbles) else 0
            position += 1
            terms[cy, cx] = (nibble / 7.5 - 1) * scale * 2  # the reference doubles every AC term
        return dc + fy.T @ terms @ fx  # (height, width)

    l = channel(lx, ly, l_dc, l_scale)
    p = channel(3, 3, p_dc, p_scale * 1.25)  # saturation boosted against the quantisation, as the reference
    q = channel(3, 3, q_dc, q_scale * 1.25)
    a = channel(5, 5, a_dc, a_scale) if alpha else np.ones_like(l)
    b = l - 2 / 3 * p
    r = (3 * l - b + q) / 2
    g = r - q
    out = np.stack([r, g, b, a], axis=-1)
    return (np.clip(out, 0.0, 1.0) * 255).astype(np.uint8)  # truncates, as the reference's Uint8Array
