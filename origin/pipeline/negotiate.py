"""Choose an output format from the Accept header.

Rule (the edge's nginx map applies the same one):
  1. AVIF when Accept names image/avif with q > 0;
  2. else JPEG XL when Accept names image/jxl with q > 0;
  3. else WebP when Accept names image/webp with q > 0;
  4. else JPEG, or PNG when the image has an alpha channel.
Wildcards (image/*, */*) never select AVIF, JPEG XL or WebP: browsers without them send
wildcards too (older Safari), and a guess would serve them bytes they cannot decode.

JPEG XL sits after AVIF and before WebP, by bytes at equal measured quality:
`loadtest/bench_quality.py --targets 0.965` (every format's quality chosen per photo to SSIM
0.965; 48 photos at w300, w600 and w1200) gives AVIF 4837 kB (mean SSIM 0.9696), JPEG XL
5047 kB (0.9718), WebP 5288 kB (0.9701), JPEG 8493 kB (0.9701). Safari 17 names all three;
it gets AVIF, the smallest.
"""
from __future__ import annotations


def accepted(header: str | None) -> dict[str, float]:
    """Media types named in Accept with their q-values."""
    types: dict[str, float] = {}
    for part in (header or "").split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for param in fields[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        types[media] = max(q, types.get(media, 0.0)) if media in types else q
    return types


def choose(header: str | None, has_alpha: bool) -> str:
    types = accepted(header)
    if types.get("image/avif", 0.0) > 0:
        return "avif"
    if types.get("image/jxl", 0.0) > 0:
        return "jxl"
    if types.get("image/webp", 0.0) > 0:
        return "webp"
    return "png" if has_alpha else "jpeg"

