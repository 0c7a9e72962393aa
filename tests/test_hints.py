"""Client hints: the width rule (pipeline/hints.py), and /images/{id}/auto on a real gunicorn origin."""
from __future__ import annotations

import json

import pytest
import requests

from origin.config import ConfigError, Settings
from origin.errors import InvalidRequest
from origin.pipeline import hints
from origin.pipeline.request import parse
from tests import images
from tests.servers import start_edge_origin, stop
from tests.test_edge_units import AUTH, sign_client

WIDTHS = (150, 300, 600, 1200, 2400)
VARY = "Accept, Sec-CH-Width, Sec-CH-DPR, Sec-CH-Viewport-Width"


def served(width=None, dpr=None, viewport=None, default=1200):
    return hints.width_class(hints.parse(width, dpr, viewport), WIDTHS, default)


def test_sec_ch_width_is_physical_pixels_and_dpr_does_not_multiply_it():
    assert served("600") == served("600", "3") == 600
    assert served("601", "1") == 1200
    assert served("150") == 150 and served("151") == 300 and served("1") == 150


def test_viewport_width_is_css_pixels_times_the_dpr():
    assert served(viewport="300") == 300  # no DPR: 1
    assert served(viewport="300", dpr="2") == 600
    assert served(viewport="301", dpr="2") == 1200
    assert served(viewport="412", dpr="2.625") == 1200  # 1081.5 physical pixels
    assert served(viewport="200", dpr="1.5") == 300
    assert served(viewport="200", dpr="1.501") == 600  # 300.2: rounded up, never down


def test_sec_ch_width_wins_over_the_viewport():
    assert served("150", "2", "1000") == 150


def test_clamped_to_the_largest_allowed_width():
    assert served("2401") == served("999999") == served(viewport="1280", dpr="3") == 2400


def test_no_or_unusable_hints_give_the_default_snapped_to_the_allow_list():
    for width, dpr, viewport in [(None, None, None), ("abc", None, None), ("-5", None, None), ("1e3", None, None),
                                 ("600px", None, None), ("0", "0", "0"), ("1234567", None, None), ("", "", ""),
                                 ("600, 700", None, None), ("60 0", None, None), (None, "2", None),
                                 ("6.0", None, None), ("+600", None, None)]:
        assert served(width, dpr, viewport) == 1200, (width, dpr, viewport)
    assert served(default=1000) == 1200 and served(default=5000) == 2400 and served(default=1) == 150


def test_a_bad_dpr_is_ignored_not_the_width():
    for dpr in ("abc", "0", "0.000", "-2", "2.5x", "100", "1.2345", ".5", "2."):
        assert served(viewport="400", dpr=dpr) == 600, dpr
    assert served(viewport="400", dpr=" 2 ") == 1200  # optional whitespace around a value


def test_content_dpr_is_served_width_over_css_width():
    assert hints.content_dpr(600, hints.parse("300", "2", None)) == "4"  # CSS width 150
    assert hints.content_dpr(600, hints.parse("500", "2", None)) == "2.4"
    assert hints.content_dpr(1200, hints.parse(None, "2.625", "412")) == "2.913"  # viewport: CSS already
    assert hints.content_dpr(640, hints.parse("1000", None, None)) == "0.64"  # never upscaled
    assert hints.content_dpr(17, hints.parse(None, None, "16")) == "1.063"  # half up (1.0625)
    assert hints.content_dpr(600, hints.parse(None, "2", None)) is None  # no CSS width known


def test_auto_is_a_finite_variant():
    assert parse("abcdef", "auto", WIDTHS, (64,)).kind == "auto"
    assert parse("abcdef", "auto.webp", WIDTHS, (64,)).fmt == "webp"
    for bad in ("auto.tiff", "autox", "auto.", "auto600", "Auto", "auto.webp\n"):
        with pytest.raises(InvalidRequest):
            parse("abcdef", bad, WIDTHS, (64,))


def test_auto_width_setting():
    assert Settings.from_env({"IMAGEHOST_AUTO_WIDTH": "600"}).auto_width == 600
    with pytest.raises(ConfigError):
        Settings.from_env({"IMAGEHOST_AUTO_WIDTH": "0"})


def test_auto_urls_are_signed_like_the_rest():
    resp = sign_client().simulate_post("/v1/sign", headers=AUTH, json={
        "paths": ["/images/abcdef/auto", "/images/abcdef/auto.avif"], "expires_in": 60})
    assert resp.status_code == 200 and "/images/abcdef/auto?k=k2&e=" in resp.json["urls"][0]
    bad = sign_client().simulate_post("/v1/sign", headers=AUTH, json={"paths": ["/images/abcdef/auto.x"],
                                                                      "expires_in": 60})
    assert bad.status_code == 400


# --- a real origin ---

@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    root = tmp_path_factory.mktemp("hints")
    small = root / "small.jpg"
    small.write_bytes(images.jpeg(images.scene(640, 480)))
    server = start_edge_origin(root / "var", {"IMAGEHOST_MISS_BUDGET_MS": "0",
                                              "IMAGEHOST_PUBLIC_BASE_URL": "https://img.example"})
    result = server.ingest(images.PHOTOS[0], small)
    assert result.returncode == 0, result.stderr
    yield server, [json.loads(line)["id"] for line in result.stdout.splitlines()]
    stop(server.proc)


def get(origin, path, **headers):
    return requests.get(origin.url + path, headers={k.replace("_", "-"): v for k, v in headers.items()}, timeout=60)


def store_keys(origin) -> set[str]:
    root = origin.data_dir / "store"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("headers, width", [
    ({}, 1200),
    ({"Sec-CH-Width": "500", "Sec-CH-DPR": "2"}, 600),
    ({"Sec-CH-Viewport-Width": "400", "Sec-CH-DPR": "2"}, 1200),
    ({"Sec-CH-Viewport-Width": "375", "Sec-CH-DPR": "0.4"}, 150),
    ({"Sec-CH-Width": "5000"}, 2400),
    ({"Sec-CH-Width": "lots", "Sec-CH-DPR": "-1", "Sec-CH-Viewport-Width": "9e9"}, 1200),
])
def test_auto_serves_the_width_the_hints_need(origin, headers, width):
    server, (photo, _) = origin
    resp = get(server, f"/images/{photo}/auto", Accept="image/webp,*/*", **headers)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/webp"
    assert images.size(resp.content)[0] == int(resp.headers["X-Image-Width"]) == width
    assert resp.headers["Vary"] == VARY
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    expected = hints.content_dpr(width, hints.parse(headers.get("Sec-CH-Width"), headers.get("Sec-CH-DPR"),
                                                    headers.get("Sec-CH-Viewport-Width")))
    assert resp.headers.get("Content-DPR") == expected


def test_auto_is_the_w_variant_and_makes_no_store_object(origin):
    server, (photo, _) = origin
    plain = get(server, f"/images/{photo}/w600.jpeg")
    before = store_keys(server)
    for headers in ({"Sec-CH-Width": "600"}, {"Sec-CH-Width": "301"}, {"Sec-CH-Viewport-Width": "300",
                                                                       "Sec-CH-DPR": "2"}):
        auto = get(server, f"/images/{photo}/auto.jpeg", **headers)
        assert auto.content == plain.content and auto.headers["ETag"] == plain.headers["ETag"]
        assert auto.headers["Vary"] == "Sec-CH-Width, Sec-CH-DPR, Sec-CH-Viewport-Width"  # the format is fixed
    negotiated = get(server, f"/images/{photo}/auto", Accept="*/*", Sec_CH_Width="600")
    assert negotiated.content == plain.content
    assert store_keys(server) == before
    get(server, f"/images/{photo}/auto.png", Sec_CH_Width="150")  # a miss renders the w150 variant itself
    after = store_keys(server) - before
    assert len(after) == 1 and next(iter(after)).endswith("/w150.png") and not any("auto" in k for k in after)


def test_auto_never_upscales(origin):
    server, (_, small) = origin
    resp = get(server, f"/images/{small}/auto.webp", Sec_CH_Width="1000")
    assert images.size(resp.content) == (640, 480) and resp.headers["X-Image-Width"] == "640"
    assert resp.headers["Content-DPR"] == "0.64"


def test_conditional_auto_request(origin):
    server, (photo, _) = origin
    first = get(server, f"/images/{photo}/auto.webp", Sec_CH_Width="300")
    again = get(server, f"/images/{photo}/auto.webp", Sec_CH_Width="300", If_None_Match=first.headers["ETag"])
    assert again.status_code == 304 and again.headers["Vary"] == "Sec-CH-Width, Sec-CH-DPR, Sec-CH-Viewport-Width"


def test_bad_auto_urls_are_400_with_json(origin):
    server, (photo, _) = origin
    for variant in ("auto.tiff", "autox", "auto."):
        resp = get(server, f"/images/{photo}/{variant}")
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_request", variant


def test_pages_ask_for_client_hints(origin):
    server, _ = origin
    for page in ("/", "/gallery", "/review"):
        resp = get(server, page)
        assert resp.status_code == 200
        assert resp.headers["Accept-CH"] == "Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width"
        policy = resp.headers["Permissions-Policy"]
        for feature in ("ch-dpr", "ch-width", "ch-viewport-width"):
            assert f'{feature}=(self "https://img.example")' in policy
    assert "Accept-CH" not in get(server, "/static/style.css").headers


def test_the_origin_checks_a_signed_auto_url_like_any_variant(tmp_path):
    from origin.security.signing import SigningKeys, sign_path

    server = start_edge_origin(tmp_path / "var", {"IMAGEHOST_SIGNING_REQUIRED": "1",
                                                  "IMAGEHOST_SIGNING_KEYS": "k1:origin-secret"}, workers=1)
    try:
        photo = json.loads(server.ingest(images.PHOTOS[1]).stdout)["id"]
        path = f"/images/{photo}/auto.webp"
        signed = sign_path(SigningKeys.parse("k1:origin-secret"), path, 60)
        for width, headers in ((300, {"Sec-CH-Width": "300"}), (1200, {}), (2400, {"Sec-CH-Width": "4000"})):
            resp = get(server, signed, **headers)
            assert resp.status_code == 200 and images.size(resp.content)[0] == width, resp.text
        refused = get(server, path, Sec_CH_Width="300")
        assert refused.status_code == 403 and refused.json()["error"] == "bad_signature"
    finally:
        stop(server.proc)


def test_the_api_and_the_config_offer_auto(tmp_path, catalog_url):
    """An owner finds /auto beside the fixed widths, and the page its default and the hints it reads."""
    from urllib.parse import urlsplit

    from tests.test_dedup_pipeline import make_host

    host = make_host(tmp_path, catalog_url, api_keys="hints-key:alice")
    image_id = host.upload(images.PHOTOS[0].read_bytes())
    client = host.client()
    answer = client.simulate_get(f"/v1/images/{image_id}", headers={"Authorization": "Bearer hints-key"}).json
    auto = answer["urls"]["auto"]
    assert auto.endswith(f"/images/{image_id}/auto")
    resp = client.simulate_get(urlsplit(auto).path, headers={"Sec-CH-Width": "280", "Accept": "image/webp"})
    assert resp.status_code == 200 and images.size(resp.content)[0] == int(resp.headers["X-Image-Width"]) == 300
    config = client.simulate_get("/v1/config").json["auto"]
    assert config == {"path": "/images/{id}/auto", "default_width": 1200,
                      "client_hints": ["Sec-CH-Width", "Sec-CH-DPR", "Sec-CH-Viewport-Width"]}
