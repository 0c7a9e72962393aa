"""Render sources and deferred formats through the real delivery app (falcon.testing, local store, SQLite)
and the worker's real steps: which stored object a render reads, when the intermediate is made, and
what a negotiated miss answers while its format renders in the background."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest
from falcon import testing

from origin import keys
from origin.app import create_app
from origin.ingest import backfill
from origin.ingest.originals import ingest
from origin.ingest.validate import Limits
from origin.pipeline import deferral, sources
from origin.pipeline.render import Encoding, RenderOptions
from origin.ports.store_local import LocalStore
from origin.wiring import open_catalog
from tests import images
from tests.test_dedup_pipeline import make_host

CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
BIG = (1600, 1200)  # with an intermediate of long side 300: 300 x 225, 1/28 of the pixels


class RecordingStore(LocalStore):
    """The local store, remembering which keys were read."""

    def __init__(self, root):
        super().__init__(root)
        self.reads: list[str] = []

    def get(self, key: str) -> bytes:
        self.reads.append(key)
        return super().get(key)


@pytest.fixture
def host(settings, metrics):
    settings = replace(settings, intermediate_sizes=(300,), miss_budget_ms=0)
    store = RecordingStore(settings.store_dir)
    catalog = open_catalog(settings.catalog)

    class Host:
        def app(self, **overrides):
            return testing.TestClient(create_app(replace(settings, **overrides), store, catalog, metrics))

        def add(self, data: bytes, sizes: tuple = (300,)) -> str:
            return ingest(data, store, catalog, limits=Limits.from_settings(settings), intermediate_sizes=sizes).id

        def content(self, image_id: str) -> str:
            return catalog.get(image_id).content

    Host.store, Host.catalog, Host.settings = store, catalog, settings
    yield Host()
    catalog.close()


def renders_read(host, client, path: str, **headers) -> list[str]:
    host.store.reads.clear()
    resp = client.simulate_get(path, headers=headers)
    assert resp.status_code == 200, resp.text
    return [key.rpartition("/")[2] for key in host.store.reads]


def test_ingest_stores_the_intermediate_and_small_sizes_render_from_it(host):
    image_id = host.add(images.jpeg(images.scene(*BIG)))
    content = host.content(image_id)
    stored = host.store.get(keys.intermediate_key(content, False))
    assert images.size(stored) == (300, 225)
    client = host.app()
    assert renders_read(host, client, f"/images/{image_id}/w150.webp") == ["w150.webp", "intermediate.jpg"]
    assert renders_read(host, client, f"/images/{image_id}/sq150.jpeg") == ["sq150.jpg", "intermediate.jpg"]
    # wider than the intermediate: the original
    assert renders_read(host, client, f"/images/{image_id}/w600.webp") == ["w600.webp", "source.jpg"]
    assert renders_read(host, client, f"/images/{image_id}/original") == ["original.jpg", "source.jpg"]
    resp = client.simulate_get(f"/images/{image_id}/w150.webp")
    assert images.size(resp.content) == (150, 113) and resp.headers["server-timing"] == "store"


def test_a_ladder_of_intermediates_each_size_from_the_smallest_that_serves_it(host):
    image_id = host.add(images.jpeg(images.scene(*BIG)), sizes=(150, 600))
    content = host.content(image_id)
    assert images.size(host.store.get(keys.intermediate_key(content, False))) == (600, 450)
    assert images.size(host.store.get(keys.intermediate_key(content, False, 150))) == (150, 113)
    client = host.app(intermediate_sizes=(150, 600))
    assert renders_read(host, client, f"/images/{image_id}/w150.jpeg")[-1] == "intermediate.150.jpg"
    assert renders_read(host, client, f"/images/{image_id}/w300.jpeg")[-1] == "intermediate.jpg"
    assert renders_read(host, client, f"/images/{image_id}/w600.jpeg")[-1] == "intermediate.jpg"
    assert renders_read(host, client, f"/images/{image_id}/w1200.jpeg")[-1] == "source.jpg"
    assert renders_read(host, client, f"/images/{image_id}/sq150.jpeg")[-1] == "intermediate.jpg"  # 113 < 150


def test_no_intermediate_where_it_would_not_pay(host):
    small = host.add(images.jpeg(images.scene(400, 300)))  # no bigger than the intermediate
    near = host.add(images.jpeg(images.scene(380, 260)))  # 300 x 205: more than half its pixels
    animated = host.add(images.animated_gif(frames=3, width=900, height=600))
    for image_id in (small, near, animated):
        assert not any("intermediate" in key for key in _keys(host, image_id))
    client = host.app()
    assert renders_read(host, client, f"/images/{animated}/w150.webp")[-1] == "source.gif"
    assert images.frames(client.simulate_get(f"/images/{animated}/w150.webp").content) == 3


def _keys(host, image_id):
    return {o.key for o in host.store.objects(keys.prefix(host.content(image_id)))}


def test_an_image_stored_without_one_gets_it_on_its_first_miss(host):
    image_id = host.add(images.jpeg(images.scene(*BIG)), sizes=())  # stored before intermediates existed
    assert not any("intermediate" in key for key in _keys(host, image_id))
    client = host.app()
    assert renders_read(host, client, f"/images/{image_id}/w300.jpeg") == [
        "w300.jpg", "intermediate.jpg", "source.jpg"]  # looked for, made from the original, used
    assert renders_read(host, client, f"/images/{image_id}/w150.jpeg") == ["w150.jpg", "intermediate.jpg"]


def test_compaction_backfills_intermediates(host):
    ids = [host.add(images.jpeg(images.scene(*BIG), quality=80 + i), sizes=()) for i in range(2)]
    small = host.add(images.jpeg(images.scene(320, 240)), sizes=())
    assert backfill.intermediates(host.store, host.catalog, (300,)) == 2
    for image_id in ids:
        assert images.size(host.store.get(keys.intermediate_key(host.content(image_id), False))) == (300, 225)
    assert not any("intermediate" in key for key in _keys(host, small))
    assert backfill.intermediates(host.store, host.catalog, (300,)) == 0  # idempotent


def test_the_worker_makes_it_from_the_validation_decode_and_moderates_it(tmp_path):
    from tests.test_dedup_pipeline import CountingModerator

    moderator = CountingModerator(0.1)
    seen = []
    moderator.score = lambda image: (seen.append(images.size(image)), CountingModerator.score(moderator, image))[1]
    host = make_host(tmp_path, f"sqlite:///{tmp_path / 'var' / 'catalog.sqlite3'}", moderator=moderator,
                     intermediate_sizes=(300,))
    image_id = host.upload(images.jpeg(images.scene(*BIG)))
    record = host.record(image_id)
    assert record.state == "ready"
    assert images.size(host.store.get(keys.intermediate_key(record.content, False))) == (300, 225)
    assert seen == [(300, 225)]  # moderation scored the intermediate, not the 1600 x 1200 original
    assert host.store.exists(keys.variant_key(record.content, "sm150", "avif"))


def test_a_slow_negotiated_miss_is_answered_fast_then_served_in_its_format(host):
    image_id = host.add(images.jpeg(images.scene(*BIG)))
    # a budget so small that AVIF at w600 (0.27 MP) is over it, and WebP within it
    client = host.app(miss_budget_ms=40, fallback_max_age=7)
    first = client.simulate_get(f"/images/{image_id}/w600", headers={"Accept": CHROME})
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/webp"
    assert first.headers["cache-control"] == "public, max-age=7, stale-while-revalidate=42"
    assert first.headers["vary"] == "Accept"
    assert first.headers["server-timing"].startswith('fallback;desc="avif",render;dur=')
    assert images.size(first.content) == (600, 450)
    key = keys.variant_key(host.content(image_id), "w600", "avif")
    deadline = time.monotonic() + 30
    while not host.store.exists(key):  # rendered in the background
        assert time.monotonic() < deadline, "the deferred AVIF never landed"
        time.sleep(0.05)
    later = client.simulate_get(f"/images/{image_id}/w600", headers={"Accept": CHROME})
    assert later.headers["content-type"] == "image/avif"
    assert later.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert later.headers["etag"] != first.headers["etag"]
    assert images.size(later.content) == (600, 450)
    # the fallback was stored as what it is: WebP clients get it from the store, for a year
    webp = client.simulate_get(f"/images/{image_id}/w600", headers={"Accept": "image/webp,*/*"})
    assert webp.headers["content-type"] == "image/webp" and webp.headers["server-timing"] == "store"
    assert webp.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_a_url_that_names_its_format_is_never_answered_with_another(host):
    image_id = host.add(images.jpeg(images.scene(*BIG)))
    client = host.app(miss_budget_ms=1)
    resp = client.simulate_get(f"/images/{image_id}/w600.avif", headers={"Accept": CHROME})
    assert resp.headers["content-type"] == "image/avif"
    assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_the_fallback_chain():
    enc = Encoding(webp_effort=4, avif_effort=2)

    def now(fmt, width, alpha=False, budget=100):
        return deferral.answer_now(fmt, alpha, RenderOptions("w", width, fmt, 4000, 3000), enc, budget)

    assert now("avif", 300) == "avif"  # 0.07 MP: 16 ms predicted
    assert now("avif", 1200) == "jpeg"  # AVIF 254 ms, WebP 146 ms: over 100
    assert now("avif", 1200, budget=150) == "webp"
    assert now("webp", 2400) == "jpeg"
    pixels = 2400 * 1800  # with alpha nothing fits: the fastest of the chain
    assert now("avif", 2400, alpha=True) == min(deferral.ALPHA_CHAIN,
                                                 key=lambda f: deferral.predicted_ms(f, enc, pixels))
    assert now("jpeg", 2400) == "jpeg"
    assert now("avif", 2400, budget=0) == "avif"  # 0: never deferred


def test_sources_choose_the_smallest_that_serves():
    sizes = (1200, 2400)
    pic = sources.Picture("content1", "jpeg", 4000, 3000, False, 1)
    assert [(s.width, s.height, s.key.rpartition("/")[2]) for s in sources.intermediates(pic, sizes)] == [
        (1200, 900, "intermediate.1200.jpg"), (2400, 1800, "intermediate.jpg")]

    def first(kind, size, picture=pic):
        return sources.choose(picture, RenderOptions(kind, size, "webp", picture.width, picture.height),
                              sizes)[0].key.rpartition("/")[2]

    assert [first("w", w) for w in (150, 1200, 2400, 3000)] == [
        "intermediate.1200.jpg", "intermediate.1200.jpg", "intermediate.jpg", "source.jpg"]
    assert first("sq", 300) == "intermediate.1200.jpg" and first("full", 4000) == "source.jpg"
    portrait = sources.Picture("content2", "jpeg", 3000, 4000, False, 1)  # rungs 1800 x 2400 and 900 x 1200
    assert [first("w", w, portrait) for w in (600, 1200, 2400)] == [
        "intermediate.1200.jpg", "intermediate.jpg", "source.jpg"]
    small = sources.Picture("content3", "jpeg", 2560, 1600, False, 1)  # 2400 would be 94 % of it: no
    assert [s.key.rpartition("/")[2] for s in sources.intermediates(small, sizes)] == ["intermediate.1200.jpg"]
    assert sources.intermediates(sources.Picture("c4", "gif", 4000, 3000, False, 5), sizes) == []
    assert sources.intermediates(sources.Picture("c3", "heic", 4032, 3024, False, 1), sizes)[-1].key.endswith(
        "intermediate.jpg")
    assert sources.original(sources.Picture("c3", "heic", 4032, 3024, False, 1)).key.endswith("master.jpg")
