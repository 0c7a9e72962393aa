"""Quality by target (origin/pipeline/targeting.py): the qualities chosen at ingest meet the SSIM target on
real photos at the sizes served, are stored with the content (SQLite and PostgreSQL, and the record
fallback), and every render of the picture uses them; a picture without them gets the fixed ones."""
from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from origin import keys
from origin.config import QUALITY_FLOOR, QUALITY_PRICE, ConfigError, Settings, quality_prices, quality_targets
from origin.ingest import originals, process
from origin.ingest.validate import Limits, validate
from origin.pipeline import deferral, fallback, sources, ssim, targeting
from origin.pipeline.render import WEBP_DEBLOCK_COST, Encoding, RenderOptions, render
from tests import images, quality
from tests.test_dedup_pipeline import catalog_url, make_host  # noqa: F401 (the fixture)

TOLERANCE = 0.008  # below the target a sampled size (w150-w600) may score: the search scores the encode against
# the rendered pixels, the test the served bytes against a full decode (the resize's own loss: up to 0.007)
WIDE_TOLERANCE = 0.01  # renders wider than a format's widest sample take its qualities unsampled (a textured
# photo scores lower at w1200)
PHOTOS = [images.PHOTO_DIR / "nature" / name for name in ("Aqua.jpg", "Dune.jpg", "GreenMeadow.jpg")] + [
    images.PHOTO_DIR / "abstract" / "Elephants_5640x3172.jpg", Path("/usr/share/backgrounds/Dragonfly_by_Bolly.jpg")]
SIZES = Settings().intermediate_sizes
EQUAL = "jpeg:0.968,webp:0.968,avif:0.957"  # floors alone: every picture's quality chosen to one SSIM


def ingested(data: bytes):
    checked = validate(data, Limits(), decode=True, decode_box=originals.decode_box(SIZES))
    decoded = originals.prepare(data, checked.fmt, SIZES, checked.decoded)
    return decoded, checked.fmt


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.stem)
def test_targeted_renders_meet_the_target_at_the_sizes_served(photo):
    data = photo.read_bytes()
    decoded, fmt = ingested(data)
    header = decoded.header
    targets = {**quality_targets(EQUAL), "jxl": 0.968}  # JPEG XL when named
    smallest = decoded.intermediates.get(min(SIZES)) or decoded.intermediates.get(None) or data
    chosen = targeting.choose(smallest, targets)
    assert set(chosen.qualities) == set(targeting.SAMPLE_WIDTHS)
    for width, chosen_at in chosen.qualities.items():  # JPEG's widest sample is w1200, the others' w600
        assert set(chosen_at) == {fmt for fmt in targets if width <= targeting.WIDEST[fmt]}, width
    full = quality.full_decode(data)
    pic = sources.Picture("c", fmt, header.width, header.height, header.has_alpha, 1)
    failures = []
    for width in (150, 300, 600, 1200):
        qualities = targeting.for_width(chosen.qualities, width)
        encoding = Encoding().with_qualities(qualities)
        for out, target in targets.items():
            opts = RenderOptions("w", width, out, header.width, header.height)
            source = sources.choose(pic, opts, SIZES)[0]
            if source.kind == "intermediate":
                rendered = render(decoded.intermediates[source.rung], opts, encoding, sources.load_intermediate)
            else:
                rendered = render(data, opts, encoding)
            picture = targeting.decoded_luma(rendered, out)
            ref = quality.reference(full, picture.shape[1], picture.shape[0])
            score = ssim.ssim(picture, quality.luma(ref))
            line = f"{photo.stem} w{width}.{out} q{qualities[out]}: SSIM {score:.4f} (target {target})"
            print(line)
            if score < target - (TOLERANCE if width <= targeting.WIDEST[out] else WIDE_TOLERANCE):
                failures.append(line)
    assert not failures, failures


def test_the_search_stays_within_its_bounds():
    easy = pyvips.Image.black(800, 600).linear(1, 128).cast("uchar").bandjoin([128, 128]).copy(
        interpretation="srgb").jpegsave_buffer(Q=95)  # flat grey: any quality meets any target
    chosen = targeting.choose(easy, {"jpeg": 0.99, "avif": 0.99})
    assert chosen.qualities[600] == {"jpeg": targeting.BOUNDS["jpeg"][0], "avif": targeting.BOUNDS["avif"][0]}
    noise = pyvips.Image.gaussnoise(800, 600, sigma=60).bandjoin([pyvips.Image.gaussnoise(800, 600, sigma=60)] * 2)
    hard = noise.cast("uchar").copy(interpretation="srgb").jpegsave_buffer(Q=95)
    chosen = targeting.choose(hard, {"webp": 0.999})  # noise never reaches it: the top, not beyond
    assert chosen.qualities == {w: {"webp": targeting.BOUNDS["webp"][1]} for w in targeting.SAMPLE_WIDTHS
                                if w <= targeting.WIDEST["webp"]}


def test_a_priced_search_takes_the_cheapest_quality_and_keeps_its_floor():
    """With a price, the quality of least bytes per pixel - price x SSIM over every quality in the
    bounds (each encoded here); a dearer price buys more quality; a floor above that lifts it to the
    lowest quality that meets the floor."""
    data = PHOTOS[3].read_bytes()  # the 5640 x 3172 one: it has a 1200-px intermediate
    decoded, _ = ingested(data)
    smallest = decoded.intermediates[min(SIZES)]
    picture = targeting.sample(smallest, 600)
    encoding = Encoding(jpeg_effort=1)
    price = quality_prices(QUALITY_PRICE)["jpeg"]
    q, score = targeting.search(picture, "jpeg", 0.0, encoding, price=price)
    measure = targeting.scorer(picture, "jpeg", encoding)
    pixels, each = picture.width * picture.height, targeting.price_per_pixel(price, picture.width)
    low, high = targeting.BOUNDS["jpeg"]
    costs = {x: measure(x)[0] / pixels - each * measure(x)[1] for x in range(low, high + 1)}
    best = min(costs.values())
    assert low < q < high and score == measure(q)[1]
    assert costs[q] - best <= 0.02 * (max(costs.values()) - best), (q, min(costs, key=costs.get))
    dear, _ = targeting.search(picture, "jpeg", 0.0, encoding, price=price * 2)
    cheap, _ = targeting.search(picture, "jpeg", 0.0, encoding, price=price / 2)
    assert cheap < q < dear
    floor = (measure(q)[1] + measure(high)[1]) / 2
    lifted, lifted_score = targeting.search(picture, "jpeg", floor, encoding, price=price)
    assert lifted_score >= floor > measure(lifted - 1)[1] and lifted > q
    # a smaller sample searches near the larger one's choice
    near, _ = targeting.search(targeting.sample(smallest, 300), "jpeg", 0.0, encoding,
                               low=q, price=price)
    assert q + targeting.NEAR[0] <= near <= q + targeting.NEAR[1]
    # the w1200 sample (JPEG's widest) looks the other way: from 12 below to 4 above the w600 choice
    wide = targeting.sample(smallest, 1200)
    chosen = targeting.choose(smallest, {}, encoding, {"jpeg": price})
    assert q + targeting.NEAR_WIDER[0] <= chosen.qualities[1200]["jpeg"] <= q + targeting.NEAR_WIDER[1]
    assert targeting.NEAR_WIDER == (-12, 4)
    assert chosen.qualities[600]["jpeg"] == q and wide.width == 1200
    assert chosen.qualities[1200]["jpeg"] == targeting.search(wide, "jpeg", 0.0, encoding, low=q, price=price,
                                                               window=targeting.NEAR_WIDER)[0]


def test_jpeg_effort_1_is_progressive_and_smaller_at_the_same_quality():
    photo = pyvips.Image.thumbnail(str(PHOTOS[1]), 1200).copy_memory()
    opts = RenderOptions("w", photo.width, "jpeg", photo.width, photo.height)
    plain, tuned = (targeting.encode(photo, opts, Encoding(jpeg_effort=e)) for e in (0, 1))
    decoded = pyvips.Image.new_from_buffer(tuned, "")
    assert (decoded.width, decoded.height) == (photo.width, photo.height)
    assert decoded.get("interlaced") == 1 and not pyvips.Image.new_from_buffer(plain, "").get_typeof("interlaced")
    assert len(tuned) < 0.95 * len(plain)
    assert Settings.from_env({"IMAGEHOST_JPEG_EFFORT": "1"}).jpeg_effort == 1
    with pytest.raises(ConfigError):
        Settings(jpeg_effort=2).validate()


def test_webp_deblock_takes_the_same_bytes_for_a_higher_ssim_and_is_priced_as_slower():
    """libwebp's autofilter sets the decoder's deblocking strength per picture: the coded picture is the
    same size, the decoded one closer to the source."""
    photo = pyvips.Image.thumbnail(str(PHOTOS[1]), 600).copy_memory()
    opts = RenderOptions("w", photo.width, "webp", photo.width, photo.height)
    reference = ssim.luma(photo)
    plain, deblocked = (targeting.encode(photo, opts, Encoding(webp_deblock=d)) for d in (False, True))
    scores = [ssim.ssim(targeting.decoded_luma(data, "webp"), reference) for data in (plain, deblocked)]
    assert plain != deblocked and abs(len(deblocked) - len(plain)) < 0.02 * len(plain)
    assert scores[1] > scores[0] + 0.0005, scores
    assert Settings.from_env({"IMAGEHOST_WEBP_DEBLOCK": "1"}).webp_deblock
    assert Encoding.from_settings(Settings(webp_deblock=True)).webp_deblock
    cost = [deferral.predicted_ms("webp", Encoding(webp_deblock=d), 1_000_000) for d in (False, True)]
    assert cost[1] == pytest.approx(cost[0] * WEBP_DEBLOCK_COST)


def test_the_ssim_is_one_for_the_same_picture_and_falls_with_the_quality():
    photo = pyvips.Image.thumbnail(str(PHOTOS[1]), 400).copy_memory()
    reference = ssim.luma(photo)
    scores = [ssim.ssim(ssim.luma(pyvips.Image.new_from_buffer(photo.jpegsave_buffer(Q=q), "")), reference)
              for q in (95, 70, 30, 5)]
    assert ssim.ssim(reference, reference) == pytest.approx(1.0, abs=1e-12)
    assert 1.0 > scores[0] > scores[1] > scores[2] > scores[3] > 0.3
    with pytest.raises(ValueError):
        ssim.ssim(reference, reference[:-1])


def test_the_target_setting():
    assert quality_targets("0.97") == {"jpeg": 0.97, "webp": 0.97, "avif": 0.97, "jxl": 0.97}
    assert quality_targets("avif:0.96, jpeg:0.98") == {"avif": 0.96, "jpeg": 0.98}
    assert quality_targets("") == quality_targets("0") == {}
    for wrong in ("png:0.9", "avif:high", "1.2", "avif:0.3"):
        with pytest.raises(ConfigError):
            Settings(quality_target=wrong).validate()
    assert quality_prices(QUALITY_PRICE) == {"jpeg": 3.7, "webp": 2.95, "avif": 1.48}
    assert quality_prices("2") == {"jpeg": 2, "webp": 2, "avif": 2, "jxl": 2}
    assert quality_prices("") == quality_prices("0") == {}
    for wrong in ("png:4", "jpeg:cheap", "jpeg:0", "-1", "jpeg:5000"):
        with pytest.raises(ConfigError):
            Settings(quality_price=wrong).validate()


def test_stored_qualities_parse_defensively():
    text = '{"600": {"jpeg": 70, "avif": 45}, "300": {"jpeg": 75}}'
    assert targeting.parse(text) == {600: {"jpeg": 70, "avif": 45}, 300: {"jpeg": 75}}
    assert targeting.parse(None) == targeting.parse("") == targeting.parse("nonsense") == {}
    assert targeting.parse('{"600": {"jpeg": 5, "png": 80, "webp": "x"}, "x": {"jpeg": 70}}') == {}
    assert targeting.encoding_for(Encoding(), None, 600) == Encoding()
    assert targeting.encoding_for(Encoding(), text, 2400).jpeg_quality == 70  # wider than every sample
    assert targeting.encoding_for(Encoding(), text, 301).avif_quality == 45
    assert targeting.encoding_for(Encoding(), text, 150).jpeg_quality == 75
    assert targeting.encoding_for(Encoding(), text, 150).avif_quality == 45  # the nearest larger sample's
    assert targeting.encoding_for(Encoding(), text, 150).webp_quality == Encoding().webp_quality  # none: fixed
    # per format: the smallest sample at least as wide that has the format, else its widest
    wide = '{"1200": {"jpeg": 66}, "600": {"jpeg": 70, "avif": 45}, "300": {"jpeg": 75}}'
    assert targeting.for_width(targeting.parse(wide), 2400) == {"jpeg": 66, "avif": 45}
    assert targeting.for_width(targeting.parse(wide), 601) == {"jpeg": 66, "avif": 45}
    assert targeting.for_width(targeting.parse(wide), 600) == {"jpeg": 70, "avif": 45}
    assert targeting.for_width(targeting.parse(wide), 300) == {"jpeg": 75, "avif": 45}


def test_qualities_are_stored_at_ingest_and_used_by_every_render(tmp_path, catalog_url):  # noqa: F811
    host = make_host(tmp_path, catalog_url, quality_target=EQUAL)
    photo = (images.PHOTO_DIR / "nature" / "Aqua.jpg").read_bytes()  # smooth: well below the fixed qualities
    image_id = host.upload(photo)
    record = host.catalog.get(image_id)
    assert record.state == "ready"
    content = host.catalog.get_content(record.content)
    stored = targeting.parse(content.qualities)
    assert set(stored) == set(targeting.SAMPLE_WIDTHS)
    # JPEG XL keeps its fixed quality unless named; only JPEG is searched at w1200
    assert set(stored[600]) == {"jpeg", "webp", "avif"} and set(stored[1200]) == {"jpeg"}
    assert stored[600]["webp"] < Encoding().webp_quality and stored[600]["avif"] < Encoding().avif_quality
    # the search ran after `ready` (the upload does not wait for it): the record fallback, written on
    # the way to ready, has none, so a render while the catalog is down takes the fixed qualities
    assert fallback.read(host.store, image_id).qualities is None
    client = host.client()
    source = host.store.get(keys.intermediate_key(record.content, False, 1200))
    opts = RenderOptions("w", 600, "webp", record.width, record.height)
    for name, fmt in (("w600", "webp"), ("w600", "jpeg"), ("sq150", "avif")):
        served = client.simulate_get(f"/images/{image_id}/{name}.{fmt}")
        assert served.status_code == 200
    served = client.simulate_get(f"/images/{image_id}/w600.webp").content
    fixed = render(source, opts, Encoding(), sources.load_intermediate)
    targeted = render(source, opts, Encoding().with_qualities(stored[600]), sources.load_intermediate)
    assert served == targeted != fixed and len(served) < len(fixed)
    # the eager thumbnails were stored before the search: the fixed qualities
    base = process.upright_base(source, record.width, record.height, max(host.settings.thumb_sizes))
    args = (base, source, record.content, record.width, record.height, 1, host.settings.thumb_sizes)
    key = keys.variant_key(record.content, "sq150", "avif")
    assert host.store.get(key) == process.thumbnails(*args, Encoding())[key][0]


def test_the_upload_is_ready_before_the_search_which_runs_once(tmp_path, catalog_url, monkeypatch):  # noqa: F811
    """The search runs once the record is `ready` (the upload never waits for it), once per content."""
    from origin.ingest import worker

    host = make_host(tmp_path, catalog_url, quality_target=QUALITY_FLOOR, quality_price=QUALITY_PRICE,
                     jpeg_effort=1, avif_effort=3, webp_deblock=True)
    states = []
    real = worker.qualities.choose_and_store

    def spy(catalog, settings, content, pixels):
        states.append([r.state for r in host.catalog.search(owner="alice")])
        return real(catalog, settings, content, pixels)

    monkeypatch.setattr(worker.qualities, "choose_and_store", spy)
    photo = (images.PHOTO_DIR / "nature" / "Aqua.jpg").read_bytes()
    image_id = host.upload(photo)
    assert states == [["ready"]]
    content_id = host.record(image_id).content
    assert targeting.parse(host.catalog.get_content(content_id).qualities)
    host.upload(photo)  # an exact alias: its content was searched already
    worker.choose_qualities(host.pipe, content_id, b"")  # chosen already: no second search
    worker.choose_qualities(host.pipe, "no-such-content", b"")  # reclaimed meanwhile: nothing to do
    assert len(states) == 1


def test_a_picture_without_stored_qualities_gets_the_fixed_ones(tmp_path, catalog_url):  # noqa: F811
    host = make_host(tmp_path, catalog_url, quality_target="")
    photo = (images.PHOTO_DIR / "nature" / "Aqua.jpg").read_bytes()
    image_id = host.upload(photo)
    record = host.catalog.get(image_id)
    assert host.catalog.get_content(record.content).qualities is None
    source = host.store.get(keys.intermediate_key(record.content, False, 1200))
    opts = RenderOptions("w", 600, "jpeg", record.width, record.height)
    served = host.client().simulate_get(f"/images/{image_id}/w600.jpeg").content
    assert served == render(source, opts, Encoding(), sources.load_intermediate)
