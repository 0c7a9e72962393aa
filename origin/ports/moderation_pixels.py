"""What every local moderation model needs: frames to score, 8-bit RGB pixels, one shared session.

    frames(image, max_frames)     which pages of an animation to score (None: a still image)
    thumbnail(image, size, page)  a shrink-on-load decode, EXIF-rotated, as 8-bit sRGB RGB
                                  (CMYK, grey and 16-bit converted, alpha flattened on white)
    shared_session(path, threads) one onnxruntime session per process, model file and thread
                                  count, made on first use under a lock and made again in a
                                  forked child; `InferenceSession.run` is thread-safe

Intra-op threads are capped (default 1) and spinning is off, so moderation never competes with
the renderer for idle cores. Decoding goes through libvips: a 50-megapixel JPEG is shrunk while
it is read, never decoded whole.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pyvips

from origin.ports.moderation import ModerationFailed


def frames(image: bytes, max_frames: int) -> list[int | None]:
    """Up to `max_frames` pages spread over an animation (first and last included); [None] if still."""
    if not isinstance(image, (bytes, bytearray, memoryview)) or not image:
        raise ModerationFailed("no image bytes to moderate")
    try:
        header = pyvips.Image.new_from_buffer(image, "")
    except pyvips.Error as exc:
        raise decode_failed(exc) from exc
    pages = header.get("n-pages") if header.get_typeof("n-pages") else 1
    if pages <= 1:
        return [None]
    count = min(pages, max(1, max_frames))
    return sorted({round(i * (pages - 1) / max(1, count - 1)) for i in range(count)})


def thumbnail(image: bytes, size: int, page: int | None = None, force: bool = False) -> pyvips.Image:
    """A decode that fits a `size` square (`force`: stretched to fill it, aspect ignored), as 8-bit
    sRGB with three bands."""
    options = f"page={page}" if page is not None else ""
    try:
        thumb = pyvips.Image.thumbnail_buffer(image, size, height=size, option_string=options,
                                              size="force" if force else "both")
        return rgb8(thumb)
    except pyvips.Error as exc:
        raise decode_failed(exc) from exc


def rgb8(image: pyvips.Image) -> pyvips.Image:
    if image.interpretation not in ("srgb", "rgb") or image.format != "uchar":
        image = image.colourspace("srgb")  # CMYK, grey, 16-bit -> 8-bit sRGB, alpha kept
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if image.bands == 1:
        image = image.bandjoin([image, image])
    return image.extract_band(0, n=3).cast("uchar")


def decode_failed(exc: pyvips.Error) -> ModerationFailed:
    return ModerationFailed("the image could not be decoded for moderation",
                            reason=(str(exc).strip().splitlines() or [""])[-1].strip())


class Session:
    """One loaded model: the onnxruntime session, its input name, and the process that made it."""

    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.meta = self.session.get_modelmeta().custom_metadata_map
        self.pid = os.getpid()

    def run(self, blob):
        return self.session.run(None, {self.input_name: blob})[0]


_sessions: dict[tuple[str, int], Session] = {}
_sessions_lock = threading.Lock()


def shared_session(path: Path, threads: int, make=Session) -> Session:
    key = (str(path), threads)
    found = _sessions.get(key)
    if found is not None and found.pid == os.getpid():
        return found
    with _sessions_lock:
        found = _sessions.get(key)
        if found is None or found.pid != os.getpid():
            found = _sessions[key] = make(path, threads)
        return found


def loaded_sessions() -> int:
    """How many models this process holds (tests: once per process, never per thread)."""
    return sum(1 for s in _sessions.values() if s.pid == os.getpid())
