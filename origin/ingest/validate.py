"""Validate an upload before anything trusts it: size, magic bytes, header limits, then a decode.

    validate(data, limits, declared_type=None, filename=None) -> Validated | raises Rejected

The order matters: the size is checked first, the type comes from the magic
bytes (origin.ingest.sniff, never the name), and width, height and frame count
are read by parsing the header bytes here, in Python, so that a file declaring
50,000 x 50,000 pixels is refused in microseconds without a decoder ever
allocating its pixels. Only a file within every limit is decoded in full.
The malware scan (reason "malware") runs after this, in the worker.

Dimensions are the coded ones (EXIF orientation is not applied; the limits
do not depend on it). For animations the pixel limit also bounds the whole
animation: width x height x frames <= max_pixels, as imgproxy does.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import pyvips

from origin.errors import InvalidRequest, UnsupportedImage
from origin.formats import FORMATS
from origin.ingest.sniff import JXL_CODESTREAM, sniff
from origin.pipeline import jxl, sources

REASONS = ("unsupported_type", "too_large", "too_many_pixels", "side_too_long", "too_many_frames", "corrupt",
           "malware")
_MIME_ALIASES = {"image/jpg": "jpeg", "image/pjpeg": "jpeg", "image/x-png": "png", "image/heif": "heic",
                 "image/heic-sequence": "heic", "image/heif-sequence": "heic", "image/avif-sequence": "avif"}
_EXTENSIONS = {"jpg": "jpeg", "jpeg": "jpeg", "jpe": "jpeg", "jfif": "jpeg", "png": "png", "gif": "gif",
               "webp": "webp", "heic": "heic", "heif": "heic", "hif": "heic", "avif": "avif", "jxl": "jxl"}
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream"}


class Rejected(InvalidRequest):
    """The upload is refused; `reason` is one of REASONS (machine-readable), `message` is for people.

    `code` is the reason too, so an HTTP answer reads {"error": "too_many_pixels", ...}.
    """

    def __init__(self, reason: str, message: str, **details):
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(message, reason=reason, **details)
        self.reason = reason
        self.code = reason


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 100_000_000
    max_side: int = 16_384
    max_frames: int = 300

    @classmethod
    def from_settings(cls, settings) -> "Limits":
        return cls(settings.max_upload_bytes, settings.max_pixels, settings.max_side, settings.max_frames)


@dataclass(frozen=True)
class Validated:
    fmt: str  # jpeg | png | gif | webp | heic | avif | jxl
    width: int
    height: int
    frames: int
    has_alpha: bool
    mismatch: str | None = None  # set when the declared type or the file name says another type
    decoded: object = None  # the decode itself (a pyvips.Image, upright) when `decode_box` asked for it

    @property
    def mime(self) -> str:
        return FORMATS[self.fmt].mime


@dataclass(frozen=True)
class _Header:
    width: int
    height: int
    frames: int = 1
    has_alpha: bool = False
    parts: tuple[tuple[int, int], ...] = ()  # other declared sizes (frames, tiles) that must fit the limits too


class _Corrupt(Exception):
    pass


def validate(data: bytes, limits: Limits, declared_type: str | None = None, filename: str | None = None,
             decode: bool = True, decode_box=None) -> Validated:
    """Check `data` against `limits` from its header, then prove it decodes.

    `decode=False` leaves the decode to the caller, who will decode anyway (the
    HEIC or JPEG XL master): it must then raise Rejected("corrupt") itself when that fails.
    `decode_box(width, height, frames) -> int | None`: decode into that long side and keep it
    (`Validated.decoded`, upright: the one decode the render intermediate is made from)."""
    if len(data) > limits.max_bytes:
        raise Rejected("too_large", f"{len(data)} bytes is over the {limits.max_bytes}-byte limit",
                       limit=limits.max_bytes)
    try:
        fmt = sniff(data[:64])
    except UnsupportedImage as exc:
        raise Rejected("unsupported_type", exc.message) from None
    try:
        header = _PARSERS[fmt](memoryview(data).toreadonly(), limits)
    except (_Corrupt, struct.error, IndexError, ValueError) as exc:
        raise Rejected("corrupt", f"the {fmt} header is unreadable: {exc or 'truncated'}") from None
    _check_limits(header, limits)
    decoded = None
    if decode:
        box = decode_box(header.width, header.height, header.frames) if decode_box else None
        decoded = _decode_check(data, fmt, header, limits, box)
    return Validated(fmt, header.width, header.height, header.frames, header.has_alpha,
                     _mismatch(fmt, declared_type, filename), decoded)


def coded_size(data: bytes, fmt: str) -> tuple[int, int]:
    """Width and height as the header of `data` (already validated as `fmt`) declares them."""
    header = _PARSERS[fmt](memoryview(data).toreadonly(), Limits())
    return header.width, header.height


def _check_limits(h: _Header, limits: Limits) -> None:
    if h.width <= 0 or h.height <= 0:
        raise Rejected("corrupt", f"the header declares an empty image ({h.width} x {h.height})")
    for width, height in ((h.width, h.height), *h.parts):
        if width * height > limits.max_pixels:
            raise Rejected("too_many_pixels", f"{width} x {height} is over the {limits.max_pixels}-pixel limit",
                           limit=limits.max_pixels)
        if max(width, height) > limits.max_side:
            raise Rejected("side_too_long", f"{width} x {height} has a side over {limits.max_side} pixels",
                           limit=limits.max_side)
    if h.frames > limits.max_frames:
        raise Rejected("too_many_frames", f"{h.frames} frames is over the {limits.max_frames}-frame limit",
                       limit=limits.max_frames)
    if h.width * h.height * h.frames > limits.max_pixels:
        raise Rejected("too_many_pixels", f"{h.frames} frames of {h.width} x {h.height} are over the "
                       f"{limits.max_pixels}-pixel limit for a whole animation", limit=limits.max_pixels)


def _decode_check(data: bytes, fmt: str, header: _Header, limits: Limits, box: int | None = None):
    """Decode in full; first the decoder's own header read (lazy, no pixels) must agree with the limits.
    With `box`, the decode is kept (upright, its long side `box`) and returned."""
    try:
        if fmt == "heic":  # HEVC: libvips' libheif cannot decode it, pillow-heif can
            import pillow_heif

            heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
            _check_limits(_Header(*heif.size, frames=len(heif)), limits)
            _ = heif.data  # decodes the primary image
            return
        if fmt == "jxl":  # pyvips-binary's libvips has no JPEG XL loader: libjxl (imagecodecs), first frame
            image = jxl.first_frame(data, (header.width, header.height))
            return image.thumbnail_image(box, height=box, size="down").copy_memory() if box is not None else None
        image = pyvips.Image.new_from_buffer(data, "", access="sequential")
        pages = image.get("n-pages") if image.get_typeof("n-pages") else 1
        height = image.get("page-height") if pages > 1 and image.get_typeof("page-height") else image.height
        _check_limits(_Header(image.width, height, pages), limits)
        options = "fail_on=truncated" + (",n=-1" if header.frames > 1 and fmt in ("gif", "webp") else "")
        if box is not None:
            return sources.decode_upright(data, box, options)
        pyvips.Image.thumbnail_buffer(data, 64, option_string=options).avg()
    except Rejected:
        raise
    except Exception as exc:  # pyvips.Error, pillow-heif's plain ValueError/RuntimeError, imagecodecs' errors
        text = getattr(exc, "detail", None) or str(exc)
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
        raise Rejected("corrupt", f"the {fmt} data does not decode: {first}") from None


def _mismatch(fmt: str, declared_type: str | None, filename: str | None) -> str | None:
    notes = []
    mime = (declared_type or "").split(";")[0].strip().lower()
    if mime not in _GENERIC_TYPES:
        said = _MIME_ALIASES.get(mime) or next((f.name for f in FORMATS.values() if f.mime == mime), None)
        if said != fmt:
            notes.append(f"declared type {mime} but the content is {fmt}")
    if filename and "." in filename.strip("."):
        ext = filename.rsplit(".", 1)[1].lower()
        if _EXTENSIONS.get(ext) != fmt:
            notes.append(f"file name ends in .{ext} but the content is {fmt}")
    return "; ".join(notes) or None


def _u16be(b, o): return struct.unpack_from(">H", b, o)[0]
def _u32be(b, o): return struct.unpack_from(">I", b, o)[0]
def _u16le(b, o): return struct.unpack_from("<H", b, o)[0]
def _u24le(b, o): return b[o] | b[o + 1] << 8 | b[o + 2] << 16


# --- PNG: IHDR is the first chunk; walk chunk headers up to IDAT for tRNS and APNG's acTL

def _png(b: memoryview, limits: Limits) -> _Header:
    if bytes(b[12:16]) != b"IHDR" or _u32be(b, 8) != 13:
        raise _Corrupt("IHDR is not the first chunk")
    width, height, color_type = _u32be(b, 16), _u32be(b, 20), b[25]
    alpha, frames, pos = color_type in (4, 6), 1, 33
    while pos + 8 <= len(b):
        length, kind = _u32be(b, pos), bytes(b[pos + 4 : pos + 8])
        if kind in (b"IDAT", b"IEND"):
            break
        if kind == b"tRNS":
            alpha = True
        elif kind == b"acTL":
            frames = max(1, _u32be(b, pos + 8))
        pos += 12 + length
    return _Header(width, height, frames, alpha)


# --- GIF: logical screen, then walk blocks counting image descriptors (sub-block headers only)

def _gif(b: memoryview, limits: Limits) -> _Header:
    width, height, packed = _u16le(b, 6), _u16le(b, 8), b[10]
    pos = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
    frames, alpha, parts, end = 0, False, [], len(b)
    while pos < end:
        kind = b[pos]
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21:  # extension: label, then sub-blocks
            if b[pos + 1] == 0xF9 and b[pos + 2] >= 4 and b[pos + 3] & 1:
                alpha = True
            pos = _skip_sub_blocks(b, pos + 2)
        elif kind == 0x2C:  # image descriptor
            frames += 1
            if frames > limits.max_frames:
                break  # enough to refuse; no need to walk the rest
            left, top, fw, fh, fpacked = struct.unpack_from("<HHHHB", b, pos + 1)
            parts.append((left + fw, top + fh))
            pos += 10 + (3 << ((fpacked & 7) + 1) if fpacked & 0x80 else 0)
            pos = _skip_sub_blocks(b, pos + 1)  # after the LZW minimum code size
        else:
            raise _Corrupt(f"unknown block 0x{kind:02x} at byte {pos}")
    if frames == 0:
        raise _Corrupt("no image in the file")
    if width == 0 or height == 0:  # a zero screen: decoders use the frames' extent
        width, height = max(p[0] for p in parts), max(p[1] for p in parts)
    return _Header(width, height, frames, alpha, tuple(parts))


def _skip_sub_blocks(b: memoryview, pos: int) -> int:
    end = len(b)
    while pos < end:
        size = b[pos]
        pos += 1 + size
        if size == 0:
            return pos
    raise _Corrupt("truncated inside a block")  # decoders show a partial frame; we refuse


# --- JPEG: walk marker segments to the first SOFn

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(b: memoryview, limits: Limits) -> _Header:
    pos = 2
    while pos + 4 <= len(b):
        if b[pos] != 0xFF:
            raise _Corrupt(f"no marker at byte {pos}")
        marker = b[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # standalone markers
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            raise _Corrupt("image data before any frame header (SOF)")
        if marker in _SOF:
            height, width = struct.unpack_from(">HH", b, pos + 5)
            if height == 0:
                raise _Corrupt("the height is given by a DNL marker, which decoders do not support")
            return _Header(width, height)
        pos += 2 + _u16be(b, pos + 2)
    raise _Corrupt("no frame header (SOF)")


# --- WebP: VP8 / VP8L / VP8X (+ ANMF frames)

def _webp(b: memoryview, limits: Limits) -> _Header:
    kind = bytes(b[12:16])
    if kind == b"VP8 ":
        if bytes(b[23:26]) != b"\x9d\x01\x2a":
            raise _Corrupt("bad VP8 start code")
        return _Header(_u16le(b, 26) & 0x3FFF, _u16le(b, 28) & 0x3FFF)
    if kind == b"VP8L":
        if b[20] != 0x2F:
            raise _Corrupt("bad VP8L signature")
        bits = struct.unpack_from("<I", b, 21)[0]
        return _Header((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 1, bool(bits >> 28 & 1))
    if kind != b"VP8X":
        raise _Corrupt(f"unknown first chunk {kind!r}")
    flags, width, height = b[20], _u24le(b, 24) + 1, _u24le(b, 27) + 1
    frames, parts, pos = 0, [], 30
    if flags & 0x02:  # animation: count ANMF chunks by their headers
        while pos + 8 <= len(b) and frames <= limits.max_frames:
            size = struct.unpack_from("<I", b, pos + 4)[0]
            if bytes(b[pos : pos + 4]) == b"ANMF":
                frames += 1
                parts.append((_u24le(b, pos + 14) + 1, _u24le(b, pos + 17) + 1))  # frame width, height
            pos += 8 + size + (size & 1)
        if frames == 0:
            raise _Corrupt("an animation without frames")
    return _Header(width, height, max(frames, 1), bool(flags & 0x10), tuple(parts))


# --- HEIC / AVIF: ISOBMFF meta box -> primary item -> its ispe; top-level items; alpha auxiliaries

def boxes(b: memoryview, start: int, end: int):
    """(kind, body start, body end) of each ISOBMFF box from `start` to `end` (HEIF, AVIF, the JPEG XL
    container); _Corrupt where one overruns its container."""
    pos = start
    while pos + 8 <= end:
        size, kind = _u32be(b, pos), bytes(b[pos + 4 : pos + 8])
        head = 8
        if size == 1:
            size, head = struct.unpack_from(">Q", b, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise _Corrupt(f"box {kind!r} at byte {pos} overruns its container")
        yield kind, pos + head, pos + size
        pos += size


def _children(b, start, end) -> dict[bytes, tuple[int, int]]:
    return {kind: (s, e) for kind, s, e in boxes(b, start, end)}


def _heif(b: memoryview, limits: Limits) -> _Header:
    top = _children(b, 0, len(b))
    if b"meta" not in top:
        raise _Corrupt("no meta box")
    meta = _children(b, top[b"meta"][0] + 4, top[b"meta"][1])  # meta is a full box
    for need in (b"pitm", b"iinf", b"iprp"):
        if need not in meta:
            raise _Corrupt(f"no {need.decode()} box")
    s, _ = meta[b"pitm"]
    primary = _u16be(b, s + 4) if b[s] == 0 else _u32be(b, s + 4)
    items = _item_types(b, *meta[b"iinf"])  # id -> (type, hidden)
    refs = _references(b, *meta[b"iref"]) if b"iref" in meta else []
    props, assoc = _properties(b, *meta[b"iprp"])
    sizes = {item: props[i] for item, idx in assoc.items() for i in idx if props.get(i, (b"",))[0] == b"ispe"}
    if primary not in sizes:
        raise _Corrupt("the primary item has no ispe (size) property")
    not_top = {f for kind, f, _ in refs if kind in (b"thmb", b"auxl", b"cdsc", b"base", b"prem")}
    not_top |= {t for kind, _, to in refs if kind == b"dimg" for t in to}
    frames = sum(1 for item, (kind, hidden) in items.items()
                 if kind != b"mime" and kind != b"Exif" and not hidden and item not in not_top) or 1
    alpha_items = {item for item, idx in assoc.items() for i in idx
                   if props.get(i, (b"",))[0] == b"auxC" and _is_alpha(props[i][1])}
    alpha = any(kind == b"auxl" and f in alpha_items and primary in to for kind, f, to in refs)
    _, width, height = sizes[primary]
    parts = tuple((w, h) for _, w, h in sizes.values())
    return _Header(width, height, frames, alpha, parts)


def _is_alpha(aux_type: bytes) -> bool:
    urn = aux_type.split(b"\0", 1)[0]
    return urn == b"urn:mpeg:hevc:2015:auxid:1" or urn.endswith(b":auxiliary:alpha")


def _item_types(b, start, end) -> dict[int, tuple[bytes, bool]]:
    pos = start + (6 if b[start] == 0 else 8)  # full box header + entry count
    items = {}
    for kind, s, e in boxes(b, pos, end):
        if kind != b"infe" or b[s] < 2:
            continue
        hidden = bool(b[s + 3] & 1)
        item, o = (_u16be(b, s + 4), s + 6) if b[s] == 2 else (_u32be(b, s + 4), s + 8)
        items[item] = (bytes(b[o + 2 : o + 6]), hidden)
    return items


def _references(b, start, end) -> list[tuple[bytes, int, list[int]]]:
    wide = b[start] != 0
    size, read = (4, _u32be) if wide else (2, _u16be)
    refs = []
    for kind, s, _ in boxes(b, start + 4, end):
        source, count = read(b, s), _u16be(b, s + size)
        refs.append((kind, source, [read(b, s + size + 2 + i * size) for i in range(count)]))
    return refs


def _properties(b, start, end):
    iprp = _children(b, start, end)
    if b"ipco" not in iprp or b"ipma" not in iprp:
        raise _Corrupt("no ipco/ipma box")
    props = {}
    for index, (kind, s, e) in enumerate(boxes(b, *iprp[b"ipco"]), start=1):
        if kind == b"ispe":
            props[index] = (kind, _u32be(b, s + 4), _u32be(b, s + 8))
        elif kind == b"auxC":
            props[index] = (kind, bytes(b[s + 4 : e]))
    s, e = iprp[b"ipma"]
    version, flags = b[s], b[s + 3]
    count, pos, assoc = _u32be(b, s + 4), s + 8, {}
    for _ in range(count):
        if pos >= e:
            raise _Corrupt("ipma overruns its box")
        item, pos = (_u16be(b, pos), pos + 2) if version < 1 else (_u32be(b, pos), pos + 4)
        n, pos = b[pos], pos + 1
        if flags & 1:
            assoc[item] = [_u16be(b, pos + 2 * i) & 0x7FFF for i in range(n)]
            pos += 2 * n
        else:
            assoc[item] = [b[pos + i] & 0x7F for i in range(n)]
            pos += n
    return props, assoc


# --- JPEG XL: the codestream's SizeHeader (ISO/IEC 18181-1 D.2), bare or in the container's jxlc/jxlp boxes

JXL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}
# U32 fields: four (bits, offset) distributions chosen by a 2-bit selector; 0 bits: the offset alone
JXL_SIZE = ((9, 1), (13, 1), (18, 1), (30, 1))
JXL_PREVIEW_DIV8 = ((0, 16), (0, 32), (5, 1), (9, 33))
JXL_PREVIEW = ((6, 1), (8, 65), (10, 321), (12, 1345))
JXL_TICKS = (((0, 100), (0, 1000), (10, 1), (30, 1)), ((0, 1), (0, 1001), (8, 1), (10, 1)))
JXL_LOOPS = ((0, 0), (3, 0), (16, 0), (32, 0))
JXL_BITS = ((0, 8), (0, 10), (0, 12), (6, 1))
JXL_FLOAT_BITS = ((0, 32), (0, 16), (0, 24), (6, 1))
JXL_EXTRA = ((0, 0), (0, 1), (4, 2), (12, 1))
JXL_CHANNEL_TYPE = ((0, 0), (0, 1), (4, 2), (6, 18))  # 0: alpha


class _Bits:
    """JPEG XL's bit reader: least significant bit first."""

    def __init__(self, data: bytes):
        self.value, self.end, self.pos = int.from_bytes(data, "little"), len(data) * 8, 0

    def u(self, n: int) -> int:
        if self.pos + n > self.end:
            raise _Corrupt("the codestream header is truncated")
        value = (self.value >> self.pos) & ((1 << n) - 1)
        self.pos += n
        return value

    def u32(self, distributions) -> int:
        bits, offset = distributions[self.u(2)]
        return self.u(bits) + offset if bits else offset

    def size(self, distributions=JXL_SIZE, div8_distributions=None) -> tuple[int, int]:
        """A SizeHeader (or, with the preview's distributions, a PreviewHeader): (width, height). A
        side that is a multiple of 8 is coded as side / 8: in u(5) + 1, or in `div8_distributions`."""
        div8 = self.u(1)

        def side() -> int:
            if not div8:
                return self.u32(distributions)
            return 8 * (self.u32(div8_distributions) if div8_distributions else self.u(5) + 1)

        height = side()
        ratio = self.u(3)
        if ratio:
            num, den = JXL_RATIOS[ratio]
            return height * num // den, height
        return side(), height


def _jxl_codestream_head(b: memoryview, need: int = 66) -> bytes:
    """The first `need` bytes of the codestream (fewer if it is shorter), copying no more than that."""
    if bytes(b[:2]) == JXL_CODESTREAM:
        return bytes(b[:need])
    head = b""
    for kind, s, e in boxes(b, 0, len(b)):
        if kind == b"jxlc":
            return bytes(b[s : min(e, s + need)])
        if kind == b"jxlp":  # a partial codestream: a 4-byte index, then its bytes
            head += bytes(b[s + 4 : min(e, s + 4 + need - len(head))])
            if len(head) >= need:
                break
    if not head:
        raise _Corrupt("a container without a codestream box (jxlc or jxlp)")
    return head


def _jxl(b: memoryview, limits: Limits) -> _Header:
    """The coded size (SizeHeader) and whether an extra channel is alpha (ImageMetadata). An animation's
    frames are not counted: a master is decoded from the first frame only (originals.py)."""
    head = _jxl_codestream_head(b)
    if head[:2] != JXL_CODESTREAM:
        raise _Corrupt("the codestream does not start with FF 0A")
    bits = _Bits(head[2:])
    width, height = bits.size()
    if bits.u(1):  # all_default: three 8-bit colour channels, nothing else
        return _Header(width, height)
    if bits.u(1):  # extra_fields
        bits.u(3)  # orientation
        if bits.u(1):
            bits.size()  # the intrinsic size
        if bits.u(1):
            bits.size(JXL_PREVIEW, JXL_PREVIEW_DIV8)
        if bits.u(1):  # the animation header
            bits.u32(JXL_TICKS[0]), bits.u32(JXL_TICKS[1]), bits.u32(JXL_LOOPS), bits.u(1)
    if bits.u(1):  # a floating-point sample
        bits.u32(JXL_FLOAT_BITS), bits.u(4)
    else:
        bits.u32(JXL_BITS)
    bits.u(1)  # modular_16bit_buffers
    alpha = False
    if bits.u32(JXL_EXTRA):  # the first extra channel's info: d_alpha, or its type
        alpha = bool(bits.u(1)) or bits.u32(JXL_CHANNEL_TYPE) == 0
    return _Header(width, height, 1, alpha)


_PARSERS = {"png": _png, "gif": _gif, "jpeg": _jpeg, "webp": _webp, "heic": _heif, "avif": _heif, "jxl": _jxl}
