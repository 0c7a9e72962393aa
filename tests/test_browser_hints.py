"""Client hints in a real browser (Debian's Chromium through playwright): after one of the product's
pages answered with Accept-CH, an <img sizes> for /images/{id}/auto on it is requested with
Sec-CH-DPR, Sec-CH-Width (physical pixels: CSS width × DPR) and Sec-CH-Viewport-Width (CSS pixels),
and the origin serves the width they need."""
from __future__ import annotations

import json
import shutil

import pytest

from tests import images
from tests.browser import CHROMIUM, playwright_driver  # noqa: F401 (fixture)
from tests.servers import start_edge_origin, stop

ADD_IMAGE = """([src, sizes]) => new Promise((resolve, reject) => {
  const img = document.createElement("img");
  img.sizes = sizes;
  img.srcset = src + " 2400w";
  img.style.width = sizes;
  img.onload = () => resolve(img.currentSrc);
  img.onerror = () => reject(new Error("image failed"));
  document.body.append(img);
})"""


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    server = start_edge_origin(tmp_path_factory.mktemp("browser-hints") / "var", {"IMAGEHOST_MISS_BUDGET_MS": "0"})
    result = server.ingest(images.PHOTOS[0])
    assert result.returncode == 0, result.stderr
    yield server, json.loads(result.stdout)["id"]
    stop(server.proc)


@pytest.mark.parametrize("page_path", ["/", "/gallery"])
def test_chromium_sends_hints_to_auto_and_gets_the_width_they_need(host, playwright_driver, tmp_path, page_path):
    server, image_id = host
    profile = tmp_path / "profile"
    context = playwright_driver.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, viewport={"width": 1000, "height": 700},
        device_scale_factor=2, args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
    try:
        page = context.new_page()
        sent = []
        page.on("request", lambda r: sent.append(r) if "/auto" in r.url else None)
        page.goto(server.url + page_path)
        page.evaluate(ADD_IMAGE, [f"/images/{image_id}/auto", "280px"])
        headers = sent[-1].all_headers()
        assert headers.get("sec-ch-dpr") == "2", headers
        assert headers.get("sec-ch-width") == "560", headers  # 280 CSS px × DPR 2: physical pixels
        assert headers.get("sec-ch-viewport-width") == "1000", headers  # CSS pixels
        response = sent[-1].response()
        assert response.headers["x-image-width"] == "600" and response.headers["content-dpr"] == "2.143"
        assert images.size(response.body())[0] == 600
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)
