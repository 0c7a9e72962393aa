"""Presets (origin/presets.py) through the real delivery app (falcon.testing, local store, SQLite) on real
photos: the grammar and its start-up errors, each mode's dimensions in both orientations, the render
source each box starts from, gravity, animations, keys, /v1/config and the image description."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import pytest
import pyvips
from falcon import testing

from origin import keys, presets
from origin.app import create_app
from origin.config import ConfigError, Settings
from origin.errors import InvalidRequest
from origin.ingest.originals import ingest
from origin.ingest.validate import Limits
from origin.pipeline.render import RenderOptions, render
from origin.pipeline.request import parse
from origin.wiring import open_catalog
from tests import images
from tests.test_render_sources import RecordingStore

CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
EXTRA = ("centred=fill 400x400 centre, smart=fill 400x400 smart, wide=fill 4000x1000, big=fit 4000x4000, "
         "strip=fill 480x160 smart, thumb=fill 100x100 centre")


@pytest.fixture
def host(settings, metrics):
    settings = replace(settings, presets=f"{presets.DEFAULT}, {EXTRA}", miss_budget_ms=0,
                       api_keys="owner-key:owner")
    store = RecordingStore(settings.store_dir)
    catalog = open_catalog(settings.catalog)

    class Host:
        client = testing.TestClient(create_app(settings, store, catalog, metrics))

        def add(self, data: bytes) -> str:
            return ingest(data, store, catalog, limits=Limits.from_settings(settings), owner="owner",
                          intermediate_sizes=settings.intermediate_sizes).id

        def get(self, image_id: str, name: str, **headers):
            return self.client.simulate_get(f"/images/{image_id}/{name}", headers=headers)

        def size(self, image_id: str, name: str) -> tuple[int, int]:
            resp = self.get(image_id, name)
            assert resp.status_code == 200, resp.text
            image = pyvips.Image.new_from_buffer(resp.content, "")
            return image.width, image.height

    Host.store, Host.catalog, Host.settings = store, catalog, settings
    yield Host()
    catalog.close()


def landscape() -> bytes:
    return images.PHOTOS[0].read_bytes()  # Aqua.jpg, 2560 x 1600


def portrait() -> bytes:
    """A real photo turned upright: 1600 x 2560."""
    return pyvips.Image.new_from_file(str(images.PHOTOS[1])).rot90().jpegsave_buffer(Q=92)


# --------------------------------------------------------------------- grammar


def test_defaults_parse_to_the_documented_presets():
    table = Settings().named_presets
    assert [p.definition for p in table] == ["fill 800x450 smart", "fill 128x128 smart", "fit 2400x1600", "width 800"]
    assert table.names == ("card", "avatar", "hero", "content")
    assert presets.parse("a=fill 10x20").get("a").gravity == "centre"
    assert presets.parse("") == presets.parse("off") == presets.Presets()


@pytest.mark.parametrize("text, why", [
    ("w300=width 300", "taken"), ("sq64=fit 1x1", "taken"), ("original=width 10", "taken"),
    ("auto=width 10", "taken"), ("placeholder=width 10", "taken"), ("Card=width 10", "must be"),
    ("9lives=width 10", "must be"), ("a=fill 10x10 left", "expected"), ("a=fit 10x10 smart", "expected"),
    ("a=width 0", "between"), ("a=width 10, a=width 20", "twice"), ("a=zoom 10x10", "expected"),
    ("card", "name=definition"), ("a=fit 10", "expected"),
])
def test_a_bad_preset_is_a_config_error_at_start_up(text, why):
    with pytest.raises(ConfigError, match="IMAGEHOST_PRESETS") as caught:
        Settings.from_env({"IMAGEHOST_PRESETS": text})
    assert why in str(caught.value)


def test_the_digest_follows_the_definition_only():
    a, b = presets.parse("card=fill 800x450 smart"), presets.parse("card = FILL 800x450  smart")
    assert a.get("card").key_name == b.get("card").key_name
    changed = presets.parse("card=fill 800x400 smart").get("card")
    assert changed.key_name.startswith("p-card-") and changed.key_name != a.get("card").key_name
    assert len(changed.digest) == 8


def test_only_configured_presets_parse():
    table = presets.parse("card=fill 800x450 smart")
    req = parse("abcdefgh", "card.webp", (300,), (64,), table)
    assert (req.kind, req.fmt, req.name) == ("preset", "webp", table.get("card").key_name)
    assert parse("abcdefgh", "card", (300,), (64,), table).fmt is None
    for variant in ("hero", "card.bmp", "card.", "card\n", "Card", "card.webp.webp"):
        with pytest.raises(InvalidRequest):
            parse("abcdefgh", variant, (300,), (64,), table)


def test_preset_keys_are_lazy_variants():
    key = keys.variant_key("C0ntent1", Settings().named_presets.get("card").key_name, "webp")
    assert key == f"images/C0ntent1/p-card-{Settings().named_presets.get('card').digest}.webp"
    assert keys.object_class(key) == "variant" and keys.object_class(key) in keys.REGENERABLE


# --------------------------------------------------------------------- dimensions on real photos


@pytest.mark.parametrize("photo, expected", [
    (landscape, {"card": (800, 450), "avatar": (128, 128), "hero": (2400, 1500), "content": (800, 500),
                 "big": (2560, 1600), "wide": (2560, 640)}),
    (portrait, {"card": (800, 450), "avatar": (128, 128), "hero": (1000, 1600), "content": (800, 1280),
                "big": (1600, 2560), "wide": (1600, 400)}),
])
def test_each_mode_on_real_photos(host, photo, expected):
    image_id = host.add(photo())
    got = {name: host.size(image_id, f"{name}.webp") for name in expected}
    assert got == expected
    assert host.size(image_id, "card.jpeg") == host.size(image_id, "card.avif") == (800, 450)


def test_a_box_renders_from_the_smallest_intermediate_that_serves_it(host):
    image_id = host.add(images.BIG_PHOTO.read_bytes())  # 5640 x 3172: rungs 2400 x 1350 and 1200 x 675
    content = host.catalog.get(image_id).content
    rung = keys.intermediate_key(content, False, 1200)
    expected = {"card": rung, "avatar": rung, "content": rung, "hero": keys.intermediate_key(content, False),
                "big": keys.source_key(content, "jpeg"), "wide": keys.source_key(content, "jpeg")}  # 4000 wide
    for name, source in expected.items():
        host.store.reads.clear()
        assert host.get(image_id, f"{name}.png").status_code == 200
        assert host.store.reads[-1] == source, name
    assert host.size(image_id, "hero.png") == (2400, 1350) and host.size(image_id, "wide.png") == (4000, 1000)


def test_a_portrait_fill_that_needs_more_than_the_rung_reads_the_original(host):
    image_id = host.add(portrait())  # one intermediate: 750 x 1200; card covers at 800 x 1280
    content = host.catalog.get(image_id).content
    host.store.reads.clear()
    host.get(image_id, "card.png")
    assert host.store.reads[-1] == keys.source_key(content, "jpeg")
    host.store.reads.clear()
    host.get(image_id, "avatar.png")
    assert host.store.reads[-1] == keys.intermediate_key(content, False, 1200)


def test_the_same_box_from_an_intermediate_or_the_original(host):
    """Output dimensions come from the original's: a render from either source has the same size."""
    data = landscape()
    image_id = host.add(data)
    for name in ("card", "hero", "content", "avatar"):
        opts = RenderOptions.for_preset(host.settings.named_presets.get(name), "png", 2560, 1600)
        out = pyvips.Image.new_from_buffer(render(data, opts), "")  # from the original
        assert (out.width, out.height) == host.size(image_id, f"{name}.png"), name


# --------------------------------------------------------------------- gravity


def salient_at_left() -> bytes:
    """1600 x 800: a blurred, grey real photo, and a sharp, saturated real photo in its left quarter."""
    dull = pyvips.Image.thumbnail(str(images.PHOTOS[0]), 1600, height=800, crop="centre")
    dull = dull.colourspace("b-w").gaussblur(12).colourspace("srgb")
    subject = pyvips.Image.thumbnail(str(images.PHOTOS[2]), 400, height=800, crop="attention")  # the ladybird
    return dull.insert(subject, 0, 0).jpegsave_buffer(Q=92)


def best_offset(out: pyvips.Image, reference: pyvips.Image) -> int:
    """Where along `reference` (the source scaled as the box covers it) the crop `out` was cut."""
    diffs = {x: (reference.crop(x, 0, out.width, out.height) - out).abs().avg()
             for x in range(0, reference.width - out.width + 1, 10)}
    return min(diffs, key=diffs.get)


def test_smart_and_centre_fill_cut_different_places(host):
    data = salient_at_left()
    image_id = host.add(data)
    reference = pyvips.Image.thumbnail_buffer(data, 800, height=400).colourspace("srgb").copy_memory()
    outs = {}
    for name in ("smart", "centred"):
        resp = host.get(image_id, f"{name}.png")
        outs[name] = pyvips.Image.new_from_buffer(resp.content, "").copy_memory()
        assert (outs[name].width, outs[name].height) == (400, 400)
    assert best_offset(outs["centred"], reference) == 200  # (800 - 400) / 2
    assert best_offset(outs["smart"], reference) <= 100  # the subject is in the left 200 px


# --------------------------------------------------------------------- animation, small sources


def test_animated_fill_keeps_every_frame(host):
    image_id = host.add(images.animated_gif(frames=6, width=240, height=160))
    for name, size in (("thumb", (100, 100)), ("strip", (240, 80))):  # strip: 480x160, cut at source size
        resp = host.get(image_id, f"{name}.gif")
        assert resp.status_code == 200
        out = pyvips.Image.new_from_buffer(resp.content, "", n=-1)
        assert out.get("n-pages") == 6 and out.get("page-height") == size[1] and out.width == size[0], name
    webp = pyvips.Image.new_from_buffer(host.get(image_id, "thumb.webp").content, "", n=-1)
    assert webp.get("n-pages") == 6 and (webp.width, webp.get("page-height")) == (100, 100)
    still = pyvips.Image.new_from_buffer(host.get(image_id, "thumb.jpeg").content, "")
    assert (still.width, still.height) == (100, 100)


def test_a_fill_larger_than_the_picture_cuts_its_aspect_without_upscaling(host):
    image_id = host.add(images.jpeg(images.scene(300, 200)))
    assert host.size(image_id, "card.webp") == (300, 169)  # 16:9 at the picture's width
    assert host.size(image_id, "smart.webp") == (200, 200)
    assert host.size(image_id, "hero.webp") == (300, 200)


# --------------------------------------------------------------------- HTTP answers


def test_negotiated_preset_varies_on_accept_and_is_stored_under_its_digest(host):
    image_id = host.add(landscape())
    content = host.catalog.get(image_id).content
    resp = host.get(image_id, "card", Accept=CHROME)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/avif"
    assert resp.headers["Vary"] == "Accept"
    assert "immutable" in resp.headers["Cache-Control"]
    assert host.get(image_id, "card", Accept="image/jpeg").headers["Content-Type"] == "image/jpeg"
    explicit = host.get(image_id, "card.webp")
    assert explicit.headers["Content-Type"] == "image/webp" and "Vary" not in explicit.headers
    digest = host.settings.named_presets.get("card").digest
    assert host.store.exists(f"images/{content}/p-card-{digest}.webp")
    assert host.store.exists(f"images/{content}/p-card-{digest}.avif")


@pytest.mark.parametrize("variant", ["poster", "poster.webp", "card.bmp", "card.", "hero-", "CARD"])
def test_anything_not_a_preset_is_a_json_400(host, variant):
    image_id = host.add(images.jpeg())
    resp = host.get(image_id, variant)
    assert resp.status_code == 400 and resp.json["error"] == "invalid_request"


def test_config_and_description_list_the_presets(host):
    config = host.client.simulate_get("/v1/config").json
    card = next(p for p in config["presets"] if p["name"] == "card")
    assert card == {"name": "card", "mode": "fill", "width": 800, "height": 450, "gravity": "smart",
                    "digest": host.settings.named_presets.get("card").digest}
    assert next(p for p in config["presets"] if p["name"] == "content")["height"] is None
    image_id = host.add(images.jpeg())
    info = host.client.simulate_get(f"/v1/images/{image_id}", headers={"Authorization": "Bearer owner-key"}).json
    assert info["urls"]["presets"]["card"].endswith(f"/images/{image_id}/card")
    assert set(info["urls"]["presets"]) == set(host.settings.named_presets.names)


def test_the_command_refuses_a_bad_preset_at_start_up(tmp_path):
    env = {**os.environ, "IMAGEHOST_DATA_DIR": str(tmp_path),
           "IMAGEHOST_PRESETS": "card=fill 800x450 smart, sm9=width 9"}
    done = subprocess.run([sys.executable, "-m", "origin.cli", "stop"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert "configuration error: IMAGEHOST_PRESETS: preset name 'sm9' is taken" in done.stderr


def test_deleting_an_image_removes_its_preset_renders(host):
    image_id = host.add(landscape())
    content = host.catalog.get(image_id).content
    for name in ("card.webp", "hero.jpeg", "content.avif"):
        assert host.get(image_id, name).status_code == 200
    rendered = [o.key for o in host.store.objects(keys.prefix(content)) if "/p-" in o.key]
    assert len(rendered) == 3 and all(keys.object_class(key) == "variant" for key in rendered)
    gone = host.client.simulate_delete(f"/v1/images/{image_id}", headers={"Authorization": "Bearer owner-key"})
    assert gone.status_code in (200, 204), gone.text
    assert not any(host.store.exists(key) for key in rendered)
    assert host.get(image_id, "card.webp").status_code == 404
