"""NudeNet moderator: the 320n.onnx detector that ships inside the `nudenet` wheel.

Nothing is downloaded: the model file is found next to the installed `nudenet`
package (without importing it, so OpenCV is never loaded), and run with our own
onnxruntime session so that its threads can be capped. The image is decoded and
shrunk by libvips (`thumbnail_buffer`: shrink-on-load, EXIF auto-rotation,
CMYK/16-bit/grey to 8-bit sRGB, alpha flattened on white), padded bottom/right
to the model's square input and scaled to 0..1, as NudeNet's own `_read_image`
does with OpenCV, with one deliberate difference: we feed RGB, the order the
YOLOv8 model was trained on, where NudeNet 3.4.2 swaps red and blue twice over
(cvtColor RGBA2BGR on a BGR image, then swapRB) and feeds BGR: upstream issue
notAI-tech/NudeNet#203. The model's output is decoded with NudeNet's rules (one
class per anchor, confidence over 0.25, class-agnostic NMS at IoU 0.45),
vectorised. `tests/test_moderation.py` checks both halves against NudeNet's code.

Animated and multi-page images are scored on up to MAX_FRAMES frames spread
over the animation, and the verdict is the worst frame's: scoring only the
first frame would let an animation show anything after it.

One onnxruntime session per process and thread count (moderation_pixels.shared_session).

Licence: NudeNet's code is MIT, but the 320n.onnx model's own metadata names
AGPL-3.0 (it is an Ultralytics YOLOv8 model). It is therefore an opt-in extra
(`pip install imagehost[nudenet]`, `IMAGEHOST_MODERATION=nudenet`), never installed
by default.
"""
from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np
import pyvips

from origin.config import ConfigError
from origin.ports.moderation import ModerationFailed, Verdict, verdict_from_detections
from origin.ports.moderation_pixels import Session, frames, rgb8, shared_session, thumbnail

MODEL_FILE = "320n.onnx"
MAX_FRAMES = 5
MIN_CONFIDENCE = 0.2  # NudeNet keeps an anchor whose best class reaches this ...
NMS_SCORE = 0.25  # ... then NMSBoxes keeps only scores above this
NMS_IOU = 0.45
# The model's `names` metadata says the same; this is the fallback if it is missing.
LABELS = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED",
    "BELLY_COVERED", "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE",
    "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)


def model_path() -> Path:
    """The ONNX file inside the installed nudenet package (ConfigError if absent)."""
    spec = importlib.util.find_spec("nudenet")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / MODEL_FILE
        if path.is_file():
            return path
    raise ConfigError(
        "IMAGEHOST_MODERATION=nudenet needs the nudenet package and its bundled "
        f"{MODEL_FILE}: it is an opt-in extra (pip install 'imagehost[nudenet]'; its model is AGPL-3.0); "
        "the default IMAGEHOST_MODERATION=open_nsfw needs no extra, or set IMAGEHOST_MODERATION=off "
        "to run without moderation"
    )


def _load(path: Path, threads: int) -> Session:
    """A session with what the model's metadata says: its class names and input size."""
    session = Session(path, threads)
    meta = session.meta
    names = ast.literal_eval(meta["names"]) if "names" in meta else dict(enumerate(LABELS))
    session.labels = tuple(names[i] for i in range(len(names)))
    session.size = int(ast.literal_eval(meta.get("imgsz", "[320, 320]"))[0])
    return session


def _shared_session(path: Path, threads: int) -> Session:
    return shared_session(path, threads, make=_load)


def prepare(image: pyvips.Image, size: int) -> tuple[np.ndarray, int, int]:
    """An already-thumbnailed image -> (1, 3, size, size) float32 RGB blob, width, height."""
    image = rgb8(image)
    width, height = min(image.width, size), min(image.height, size)
    pixels = np.ndarray(buffer=image.crop(0, 0, width, height).write_to_memory(), dtype=np.uint8,
                        shape=(height, width, 3))
    blob = np.zeros((1, 3, size, size), dtype=np.float32)
    blob[0, :, :height, :width] = pixels.transpose(2, 0, 1) * np.float32(1 / 255.0)
    return blob, width, height


def decode(output: np.ndarray, labels: tuple[str, ...], width: int, height: int, size: int) -> list[dict]:
    """The model's raw output -> NudeNet-style detections, boxes in the thumbnail's pixels."""
    rows = np.asarray(output, dtype=np.float32).reshape(output.shape[-2], output.shape[-1]).T
    classes = rows[:, 4:]
    confidence = classes.max(axis=1)
    chosen = np.flatnonzero((confidence >= MIN_CONFIDENCE) & (confidence > NMS_SCORE))
    if chosen.size == 0:
        return []
    rows, confidence = rows[chosen], confidence[chosen]
    class_ids = classes[chosen].argmax(axis=1)
    side = max(width, height)  # the padded square, as NudeNet scales it
    scale = side / size
    w, h = rows[:, 2] * scale, rows[:, 3] * scale
    x = np.clip((rows[:, 0] - rows[:, 2] / 2) * scale, 0, width)
    y = np.clip((rows[:, 1] - rows[:, 3] / 2) * scale, 0, height)
    w, h = np.minimum(w, width - x), np.minimum(h, height - y)
    detections = []
    for i in _nms(x, y, w, h, confidence):
        detections.append({
            "class": labels[int(class_ids[i])],
            "score": float(confidence[i]),
            "box": [int(x[i]), int(y[i]), int(w[i]), int(h[i])],
        })
    return detections


def _nms(x, y, w, h, scores) -> list[int]:
    """Greedy class-agnostic NMS, as OpenCV's NMSBoxes: drop a box whose IoU with a kept one is over NMS_IOU."""
    area = np.maximum(w, 0) * np.maximum(h, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        iw = np.minimum(x[i] + w[i], x[rest] + w[rest]) - np.maximum(x[i], x[rest])
        ih = np.minimum(y[i] + h[i], y[rest] + h[rest]) - np.maximum(y[i], y[rest])
        inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
        total = area[i] + area[rest]
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(total > 1e-7, inter / (total - inter), 1.0)
        order = rest[iou <= NMS_IOU]
    return keep


class NudeNetModerator:
    def __init__(self, threads: int = 1, max_frames: int = MAX_FRAMES):
        if threads < 1:
            raise ConfigError("moderation threads must be at least 1")
        if importlib.util.find_spec("onnxruntime") is None:
            raise ConfigError("IMAGEHOST_MODERATION=nudenet needs onnxruntime (pip install onnxruntime)")
        self.path = model_path()
        self.threads = threads
        self.max_frames = max(1, max_frames)
        self.model = f"nudenet-{importlib.metadata.version('nudenet')}/{self.path.stem}"

    def load(self) -> "NudeNetModerator":
        """Load the model now (workers call it at start; otherwise the first score does)."""
        _shared_session(self.path, self.threads)
        return self

    def detect(self, image: bytes) -> list[dict]:
        """Every frame's detections, concatenated (what the rule scores)."""
        model = _shared_session(self.path, self.threads)
        detections: list[dict] = []
        try:
            for page in self._pages(image):
                blob, width, height = prepare(thumbnail(image, model.size, page), model.size)
                detections += decode(model.run(blob), model.labels, width, height, model.size)
        except Exception as exc:  # onnxruntime raises its own (non-exported) exception types
            if isinstance(exc, ModerationFailed):
                raise
            raise ModerationFailed(f"the moderation model failed: {exc}", model=self.model) from exc
        return detections

    def score(self, image: bytes) -> Verdict:
        return verdict_from_detections(self.detect(image), self.model)

    def _pages(self, image: bytes) -> list[int | None]:
        return frames(image, self.max_frames)
