"""Parse a delivery path once into a `VariantRequest`.

    /images/{id}/original              public original (same format; HEIC → JPEG)
    /images/{id}/w{width}[.{fmt}]      width-resized, never upscaled
    /images/{id}/sq{size}[.{fmt}]      square, centre crop
    /images/{id}/sm{size}[.{fmt}]      square, smart (saliency) crop
    /images/{id}/{preset}[.{fmt}]      a named preset from IMAGEHOST_PRESETS (origin/presets.py)
    /images/{id}/auto[.{fmt}]          an allowed width chosen from client hints (pipeline/hints.py)

Without `.{fmt}` the format is chosen from Accept. Widths and sizes must be in
the configured allow-lists, spelled canonically (`w300`, never `w0300`): an
unsigned URL never makes the origin render an arbitrary size, and one variant
has one URL, so no spelling can add cache entries or store lookups.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from origin.errors import InvalidRequest
from origin.formats import OUTPUT_FORMATS
from origin.keys import check_id
from origin.presets import Preset, Presets

VARIANT_PATTERN = re.compile(r"^(?P<kind>w|sq|sm)(?P<size>[0-9]{1,6})(?:\.(?P<fmt>[a-z0-9]{1,8}))?$")
PRESET_PATTERN = re.compile(r"(?P<name>[a-z][a-z0-9-]{0,31})(?:\.(?P<fmt>[a-z0-9]{1,8}))?")
AUTO_PATTERN = re.compile(r"auto(?:\.(?P<fmt>[a-z0-9]{1,8}))?")
MALFORMED_VARIANT = ("malformed variant: expected original, w{width}, sq{size}, sm{size}, auto or a preset, "
                     "optionally .{fmt}")


@dataclass(frozen=True)
class VariantRequest:
    image_id: str
    kind: str  # original | w | sq | sm | auto (resolved to a w before it is served) | preset
    size: int | None  # None for the original, auto and a preset
    fmt: str | None  # None: negotiate from Accept (or keep the source's format for the original)
    preset: Preset | None = None  # kind "preset": its definition

    @property
    def name(self) -> str:
        """The stem of its store key: original, w300, sq150, p-card-1a2b3c4d."""
        if self.preset is not None:
            return self.preset.key_name
        return self.kind if self.kind in ("original", "auto") else f"{self.kind}{self.size}"


def parse(image_id: str, variant: str, widths: tuple[int, ...], thumb_sizes: tuple[int, ...],
          presets: Presets = Presets()) -> VariantRequest:
    check_id(image_id)
    if variant == "original":
        return VariantRequest(image_id, "original", None, None)
    auto = AUTO_PATTERN.fullmatch(variant)
    if auto:
        return VariantRequest(image_id, "auto", None, _format(auto["fmt"]))
    match = VARIANT_PATTERN.fullmatch(variant)  # `$` alone would let a trailing newline through
    if not match:
        named = PRESET_PATTERN.fullmatch(variant)
        preset = presets.get(named["name"]) if named else None
        if preset is None:
            raise InvalidRequest(MALFORMED_VARIANT, variant=variant[:80], presets=list(presets.names))
        return VariantRequest(image_id, "preset", None, _format(named["fmt"]), preset)
    kind, size, fmt = match["kind"], int(match["size"]), match["fmt"]
    if match["size"] != str(size):
        canonical = f"{kind}{size}" + (f".{fmt}" if fmt else "")
        raise InvalidRequest(f"{variant[:80]} is not the canonical spelling of {canonical}", canonical=canonical)
    allowed = widths if kind == "w" else thumb_sizes
    if size not in allowed:
        raise InvalidRequest(f"{kind}{size} is not an allowed size", allowed=list(allowed))
    return VariantRequest(image_id, kind, size, _format(fmt))


def _format(fmt: str | None) -> str | None:
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        raise InvalidRequest(f"unknown format {fmt!r}", allowed=list(OUTPUT_FORMATS))
    return fmt
