"""Magic bytes decide an upload's type; names and declared types are never trusted."""
from __future__ import annotations

from origin.errors import UnsupportedImage

HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}
AVIF_BRANDS = {b"avif", b"avis"}
JXL_CODESTREAM = b"\xff\x0a"
JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
HEIF_GENERIC = {b"mif1", b"msf1"}


def sniff(head: bytes) -> str:
    """The format name (jpeg, png, gif, webp, heic, avif, jxl) of bytes starting with `head`."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((JXL_CODESTREAM, JXL_CONTAINER)):
        return "jxl"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _isobmff(head)
    raise UnsupportedImage("not a supported image: the content is not JPEG, PNG, GIF, WebP, HEIC, AVIF or JPEG XL")


def _isobmff(head: bytes) -> str:
    size = int.from_bytes(head[:4], "big")
    box = head[8 : max(12, min(size, len(head)))]
    brands = {box[:4]} | {box[i : i + 4] for i in range(8, len(box) - 3, 4)}
    if brands & AVIF_BRANDS:
        return "avif"
    if brands & HEIC_BRANDS or brands & HEIF_GENERIC:
        return "heic"
    raise UnsupportedImage("an ISO media file that is neither HEIC nor AVIF")
