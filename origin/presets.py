"""Named presets (IMAGEHOST_PRESETS): `/images/{id}/{name}` renders a configured box.

    IMAGEHOST_PRESETS = "card=fill 800x450 smart, avatar=fill 128x128 smart, hero=fit 2400x1600,
                         content=width 800"

    width W                 W wide, the height from the picture's aspect; never upscaled (as w{W})
    fit WxH                 the whole picture inside the box, never upscaled
    fill WxH [centre|smart] the box covered, then cut to it: centre, or smart (libvips'
                            attention: the most salient part). A picture smaller than the box
                            is cut to the box's aspect at its own resolution: never upscaled

A name is `[a-z][a-z0-9-]*` (at most 32 characters) and never one of the other delivery
names: original, auto, placeholder, or w|sq|sm followed by digits. A preset's `digest` is
a short hash of its definition; its store key (`p-{name}-{digest}.{ext}`) and the edges'
cache keys carry it, so changing a definition makes new keys and never serves the old
bytes under the same name.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

DEFAULT = "card=fill 800x450 smart, avatar=fill 128x128 smart, hero=fit 2400x1600, content=width 800"
MODES = ("width", "fit", "fill")
GRAVITIES = ("centre", "smart")
NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
RESERVED = frozenset({"original", "auto", "placeholder"})
RESERVED_PATTERN = re.compile(r"(?:w|sq|sm)[0-9]+")
MAX_SIDE = 8192
_BOX = re.compile(r"([0-9]{1,5})x([0-9]{1,5})")


class PresetError(ValueError):
    """IMAGEHOST_PRESETS has an entry the origin cannot use."""


@dataclass(frozen=True)
class Preset:
    name: str
    mode: str  # width | fit | fill
    width: int
    height: int | None = None  # the box's height (fit, fill); None for width
    gravity: str | None = None  # centre | smart (fill only)

    @property
    def definition(self) -> str:
        """The canonical spelling: what the digest is taken of."""
        box = f"{self.width}" if self.height is None else f"{self.width}x{self.height}"
        return " ".join(part for part in (self.mode, box, self.gravity) if part)

    @property
    def digest(self) -> str:
        return hashlib.blake2b(self.definition.encode(), digest_size=4).hexdigest()

    @property
    def key_name(self) -> str:
        """The stem of its store keys (origin/keys.py): images/{content}/p-card-1a2b3c4d.webp."""
        return f"p-{self.name}-{self.digest}"

    def output_size(self, source_width: int, source_height: int) -> tuple[int, int]:
        """The rendered dimensions for a picture of that display size (after EXIF rotation)."""
        return box_size(self.mode, self.width, self.height, source_width, source_height)

    def describe(self) -> dict:
        return {"name": self.name, "mode": self.mode, "width": self.width, "height": self.height,
                "gravity": self.gravity, "digest": self.digest}


@dataclass(frozen=True)
class Presets:
    items: tuple[Preset, ...] = ()

    def get(self, name: str) -> Preset | None:
        return next((p for p in self.items if p.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.items)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def width_height(width: int, source_width: int, source_height: int) -> tuple[int, int]:
    """A width-bound render's dimensions (as thumbnail_buffer gives them): never upscaled."""
    width = min(width, source_width)
    return width, max(1, int(source_height * width / source_width + 0.5))


def box_size(mode: str, box_w: int, box_h: int | None, source_width: int, source_height: int) -> tuple[int, int]:
    """What a `mode` box (width, fit, fill) renders a picture of that display size to."""
    if mode == "width":
        return width_height(box_w, source_width, source_height)
    if mode == "fit":
        # the widest width whose height (rounded as libvips rounds it) still fits the box
        width = max(1, min(box_w, source_width, int(source_width * box_h / source_height)))
        return width_height(width, source_width, source_height)
    if source_width >= box_w and source_height >= box_h:
        return box_w, box_h
    # smaller than the box: the largest cut of the box's aspect, at the picture's resolution
    if source_width * box_h >= source_height * box_w:
        return max(1, min(source_width, round(source_height * box_w / box_h))), source_height
    return source_width, max(1, min(source_height, round(source_width * box_h / box_w)))


def parse_one(name: str, spec: str) -> Preset:
    if not NAME.fullmatch(name):
        raise PresetError(f"preset name {name!r} must be [a-z][a-z0-9-]*, at most 32 characters")
    if name in RESERVED or RESERVED_PATTERN.fullmatch(name):
        raise PresetError(f"preset name {name!r} is taken by a delivery name (original, auto, placeholder, "
                          "w{n}, sq{n}, sm{n})")
    words = spec.split()
    if not words or words[0] not in MODES:
        raise PresetError(f"preset {name!r}: expected 'width W', 'fit WxH' or 'fill WxH [centre|smart]', got {spec!r}")
    mode, args = words[0], words[1:]
    if mode == "width":
        if len(args) != 1 or not args[0].isdigit():
            raise PresetError(f"preset {name!r}: expected 'width W', got {spec!r}")
        width, height, gravity = int(args[0]), None, None
    else:
        box = _BOX.fullmatch(args[0]) if args else None
        extra = args[1:]
        if box is None or (mode == "fit" and extra) or len(extra) > 1 or (extra and extra[0] not in GRAVITIES):
            raise PresetError(f"preset {name!r}: expected 'fit WxH' or 'fill WxH [centre|smart]', got {spec!r}")
        width, height = int(box[1]), int(box[2])
        gravity = (extra[0] if extra else "centre") if mode == "fill" else None
    for side in (width, height):
        if side is not None and not 1 <= side <= MAX_SIDE:
            raise PresetError(f"preset {name!r}: each side must be between 1 and {MAX_SIDE}")
    return Preset(name, mode, width, height, gravity)


def parse(text: str) -> Presets:
    """`name=definition` entries, comma-separated; empty (or "off"): no presets."""
    if text.strip().lower() in ("", "off"):
        return Presets()
    found: list[Preset] = []
    for entry in text.split(","):
        if not entry.strip():
            continue
        name, sep, spec = entry.partition("=")
        if not sep:
            raise PresetError(f"expected name=definition, got {entry.strip()!r}")
        preset = parse_one(name.strip(), spec.strip().lower())
        if any(p.name == preset.name for p in found):
            raise PresetError(f"preset {preset.name!r} is defined twice")
        found.append(preset)
    return Presets(tuple(found))
