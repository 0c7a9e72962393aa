"""The opt-in NudeNet model (`pip install imagehost[nudenet]`), for real, on generated images and
Debian's photos, and our pre/post-processing against NudeNet's own code.

Its model is AGPL-3.0, so the default install (what `make test` installs) does not have it:
the whole module is then skipped, saying so. No explicit image is ever added to the repository.
"""
from __future__ import annotations

import importlib.util
import io
import threading

import numpy as np
import pytest
import pyvips

if importlib.util.find_spec("nudenet") is None:
    pytest.skip("the nudenet extra is not installed (pip install 'imagehost[nudenet]'; its model is AGPL-3.0, "
                "so it is opt-in): the default open_nsfw model is tested in test_moderation_opennsfw.py",
                allow_module_level=True)

from origin.config import Settings  # noqa: E402
from origin.errors import ImagehostError  # noqa: E402
from origin.ports import moderation_nudenet as mn  # noqa: E402
from origin.ports import moderation_pixels  # noqa: E402
from origin.ports.moderation import WEIGHTS, ModerationFailed  # noqa: E402
from origin.wiring import open_moderator  # noqa: E402
from tests import images  # noqa: E402

THRESHOLD = Settings().nsfw_threshold


@pytest.fixture(scope="session")
def nudenet():
    """The real model, loaded once for the whole test session."""
    return open_moderator("nudenet").load()


def det(label: str, score: float) -> dict:
    return {"class": label, "score": score, "box": [0, 0, 10, 10]}


def test_constructing_nudenet_does_not_load_the_model(monkeypatch):
    monkeypatch.setattr(mn, "_load", lambda *a: pytest.fail("loaded at construction"))
    moderator = open_moderator("nudenet", threads=7)
    assert moderator.model.startswith("nudenet-3.") and moderator.model.endswith("/320n")
    assert moderator.path.is_file() and moderator.path.name == "320n.onnx"


def test_model_loads_once_even_when_threads_race(monkeypatch):
    made = []
    real = mn._load

    def counting(*args):
        made.append(args)
        return real(*args)

    monkeypatch.setattr(mn, "_load", counting)
    monkeypatch.setattr(moderation_pixels, "_sessions", {})
    moderator = open_moderator("nudenet", threads=1)
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
    assert open_moderator("nudenet").load() and len(made) == 1  # a second moderator shares it


# --- the real model ------------------------------------------------------------


def test_every_weighted_class_is_a_class_of_the_shipped_model(nudenet):
    labels = mn._shared_session(nudenet.path, nudenet.threads).labels
    assert set(WEIGHTS) <= set(labels)
    assert labels == mn.LABELS  # the model's own metadata agrees with the fallback list


def test_generated_scene_scores_low(nudenet):
    for data in (images.jpeg(), images.jpeg(images.scene(1600, 900)), images.png_with_alpha(), images.rotated_jpeg()):
        verdict = nudenet.score(data)
        assert verdict.score < THRESHOLD
        assert verdict.model == nudenet.model


@pytest.mark.parametrize("path", [images.BIG_PHOTO, *images.PHOTOS], ids=lambda p: p.name)
def test_real_photos_score_low(nudenet, path):
    if not path.exists():
        pytest.skip(f"{path} missing (apt-get install mate-backgrounds)")
    verdict = nudenet.score(path.read_bytes())
    assert 0.0 <= verdict.score < THRESHOLD


def test_twelve_megapixel_jpeg_is_scored_from_a_small_decode(nudenet):
    if not images.BIG_PHOTO.exists():
        pytest.skip("mate-backgrounds missing")
    data = pyvips.Image.thumbnail(str(images.BIG_PHOTO), 4620).jpegsave_buffer(Q=85)  # 4620x2598, 12 MP
    assert nudenet.score(data).score < THRESHOLD


def test_grey_cmyk_and_sixteen_bit_inputs_are_scored(nudenet):
    base = pyvips.Image.new_from_buffer(images.jpeg(), "")
    grey = base.colourspace("b-w").pngsave_buffer()
    cmyk = base.colourspace("cmyk").jpegsave_buffer()
    deep = base.colourspace("rgb16").pngsave_buffer()
    for data in (grey, cmyk, deep):
        assert nudenet.score(data).score < THRESHOLD


def test_animated_image_scores_its_worst_frame(nudenet, monkeypatch):
    gif = images.animated_gif(frames=6)
    assert nudenet._pages(gif) == [0, 1, 2, 4, 5]  # MAX_FRAMES spread over the animation
    calls = []
    real = mn.decode

    def decode(*args):
        calls.append(args)
        found = real(*args)
        return found + [det("FEMALE_GENITALIA_EXPOSED", 0.9)] if len(calls) == 4 else found

    monkeypatch.setattr(mn, "decode", decode)
    verdict = nudenet.score(gif)
    assert len(calls) == 5 and verdict.score == 0.9


@pytest.mark.parametrize("data", [b"", b"garbage, not an image", images.jpeg()[:40], b"\x89PNG\r\n\x1a\n" + b"\0" * 64])
def test_unreadable_image_raises_a_typed_error(nudenet, data):
    with pytest.raises(ModerationFailed) as caught:
        nudenet.score(data)
    assert isinstance(caught.value, ImagehostError)
    assert caught.value.code == "moderation_failed"


# --- our pre/post-processing against NudeNet's own code ---------------------------


def test_preprocessing_matches_nudenet_except_channel_order(nudenet):
    from nudenet import nudenet as upstream

    picture = images.scene(640, 360)  # strongly coloured, so a channel swap would show
    out = io.BytesIO()
    picture.save(out, "PNG")
    data = out.getvalue()
    theirs = upstream._read_image(data, 320)[0]
    ours, width, height = mn.prepare(pyvips.Image.thumbnail_buffer(data, 320, height=320), 320)
    assert ours.shape == theirs.shape == (1, 3, 320, 320) and (width, height) == (320, 180)
    # NudeNet 3.4.2 feeds BGR (notAI-tech/NudeNet#203); the model was trained on RGB, which we feed.
    assert np.abs(ours - theirs[:, ::-1]).mean() < 0.02
    assert np.abs(ours - theirs).mean() > 0.1
    red = np.zeros((48, 64, 3), np.uint8)
    red[..., 0] = 255
    blob, _, _ = mn.prepare(pyvips.Image.new_from_array(red, interpretation="srgb"), 320)
    assert blob[0, 0, :10, :10].min() == 1.0 and blob[0, 2].max() == 0.0  # channel 0 is red


def test_postprocessing_matches_nudenet_on_synthetic_outputs():
    from nudenet import nudenet as upstream

    rng = np.random.default_rng(7)
    for trial in range(20):
        n = 2100
        output = np.zeros((1, 22, n), np.float32)
        output[0, 0:2] = rng.uniform(0, 320, (2, n))
        output[0, 2:4] = rng.uniform(4, 160, (2, n))
        output[0, 4:] = rng.uniform(0, 0.3, (18, n)) * (rng.uniform(0, 1, (18, n)) > 0.7)
        output[0, 4:, rng.choice(n, 40, replace=False)] += rng.uniform(0.2, 0.7, (40, 18))  # (anchors, classes)
        width, height = (320, 180) if trial % 2 else (213, 320)
        ours = mn.decode(output, mn.LABELS, width, height, 320)
        theirs = upstream._postprocess([output], 320 - width, 320 - height, 0, 0, width, height, 320, 320)
        key = lambda d: (d["class"], round(d["score"], 5), tuple(d["box"]))  # noqa: E731
        assert len(ours) > 100  # many overlapping candidates, so NMS really decides
        assert sorted(map(key, ours)) == sorted(map(key, theirs))
