"""The pages in a real browser (Debian's Chromium through playwright): upload with progress and live
state, the gallery's negotiated thumbnails, a refusal decided by the server, review by key press.
Screenshots of every page land in test-output/screenshots/."""
from __future__ import annotations

import re

import pytest
import requests

from tests import images
from tests.browser import chromium, open_page, playwright_driver, screenshot, sign_in  # noqa: F401 (fixtures)
from tests.servers import start_origin, stop
from tests.uploads import API_KEY, KEYS_ENV, REVIEWER_KEY, auth, upload, wait_state

PHOTOS = [images.PHOTO_DIR / "nature" / "Aqua.jpg", images.PHOTO_DIR / "nature" / "Garden.jpg"]
REFUSED = "the server responded with a status of 4"  # the console's line for a 4xx answer

# records every state and progress value the upload page shows, as a person would see them change
RECORD_UPLOADS = """
window.__seen = {};
new MutationObserver((records) => {
  for (const r of records) {
    const li = r.target.closest && r.target.closest("li.upload");
    if (!li) continue;
    const name = li.querySelector(".name").textContent;
    const seen = (window.__seen[name] ??= {states: [], progress: []});
    if (r.attributeName === "data-state" && seen.states.at(-1) !== li.dataset.state) seen.states.push(li.dataset.state);
    if (r.attributeName === "value") seen.progress.push(Number(r.target.getAttribute("value")));
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-state", "value"]});
"""


@pytest.fixture(scope="module")
def host(tmp_path_factory, clamd_socket):
    env = {**KEYS_ENV, "IMAGEHOST_CLAMD_SOCKET": str(clamd_socket), "IMAGEHOST_MODERATION": "fixed:0.1"}
    server = start_origin(tmp_path_factory.mktemp("browser") / "var", env)
    yield server
    stop(server.proc)


@pytest.fixture(scope="module")
def strict_host(tmp_path_factory, clamd_socket):
    """Everything is held (0.97), and delivery URLs must be signed: the pages sign what they show."""
    env = {**KEYS_ENV, "IMAGEHOST_CLAMD_SOCKET": str(clamd_socket), "IMAGEHOST_MODERATION": "fixed:0.97",
           "IMAGEHOST_SIGNING_REQUIRED": "1"}
    server = start_origin(tmp_path_factory.mktemp("browser-strict") / "var", env)
    yield server
    stop(server.proc)


def test_pages_are_static_files_with_a_strict_csp(host):
    for path in ("/", "/gallery", "/review"):
        resp = requests.get(host.url + path, timeout=10)
        assert resp.status_code == 200 and resp.headers["Content-Type"] == "text/html; charset=utf-8"
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self';" in csp and "style-src 'self';" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert not re.search(r"<script(?![^>]*\bsrc=)", resp.text), "inline script"
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", resp.text), "inline style or handler"
        assert not re.search(r"(src|href)=\"(/|https?:)", resp.text), "every URL in a page is relative"
        again = requests.get(host.url + path, headers={"If-None-Match": resp.headers["ETag"]}, timeout=10)
        assert again.status_code == 304
    for name, kind in (("style.css", "text/css"), ("common.js", "text/javascript"), ("icon.svg", "image/svg+xml")):
        resp = requests.get(f"{host.url}/static/{name}", timeout=10)
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith(kind)
        assert resp.headers["Cache-Control"] == "public, max-age=300" and resp.headers["ETag"]
    assert requests.head(f"{host.url}/static/upload.js", timeout=10).status_code == 200
    assert requests.get(f"{host.url}/static/index.html", timeout=10).status_code == 404
    assert requests.get(f"{host.url}/static/nothing.js", timeout=10).json()["error"] == "not_found"
    config = requests.get(f"{host.url}/v1/config", timeout=10).json()
    assert config["max_bytes"] == 20 * 1024 * 1024 and config["signing_required"] is False
    assert config["widths"] == [150, 300, 600, 1200, 2400] and "image/jpeg" in config["accepted_types"]
    assert "/v1/config" in requests.get(f"{host.url}/openapi.json", timeout=10).json()["paths"]


def test_upload_two_photos_with_progress_until_ready(host, chromium):
    chromium.add_init_script(RECORD_UPLOADS)
    page, watch = open_page(chromium, host.url + "/")
    assert page.is_visible("#gate") and not page.is_visible("#files + label")
    screenshot(page, "signed-out")
    sign_in(page, API_KEY)
    page.set_input_files("#files", [str(p) for p in PHOTOS])
    for photo in PHOTOS:
        item = page.locator("li.upload", has_text=photo.name)
        page.wait_for_selector(f"li.upload[data-state=ready]:has-text('{photo.name}')", timeout=90_000)
        assert item.locator("progress").evaluate("p => p.value === p.max")
        assert item.get_by_role("link", name="Open in the gallery").is_visible()
    seen = page.evaluate("window.__seen")
    for photo in PHOTOS:
        states, progress = seen[photo.name]["states"], seen[photo.name]["progress"]
        assert states[:2] == ["asking", "sending"] and states[-1] == "ready", states
        assert set(states) <= {"asking", "sending", "uploaded", "validating", "moderating", "processing", "ready"}
        assert progress[-1] == 100 and progress == sorted(progress), progress  # it only moves forward
    screenshot(page, "upload")
    watch.assert_clean()
    watch.assert_key_kept(API_KEY, host.url)
    assert page.evaluate("sessionStorage.getItem('imagehost.key.owner')") == API_KEY
    assert API_KEY not in page.content()


def test_refusals_are_flagged_and_decided_by_the_server(host, chromium):
    page, watch = open_page(chromium, host.url + "/")
    sign_in(page, API_KEY)
    page.set_input_files("#files", [
        {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"not a picture, only some text\n" * 20},
        {"name": "readme.txt", "mimeType": "text/plain", "buffer": b"plain text"},
        {"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff" + bytes(21 * 1024 * 1024)},
    ])
    # named .jpg, sent as image/jpeg: only the server can tell, from the magic bytes
    page.wait_for_selector("li.upload[data-state=quarantined]:has-text('notes.jpg')", timeout=60_000)
    notes = page.locator("li.upload", has_text="notes.jpg")
    assert "unsupported_type" in notes.inner_text()
    # flagged in the browser, never sent unless asked; then the server refuses them itself
    for name, code in (("readme.txt", "unsupported_type"), ("huge.jpg", "too_large")):
        item = page.locator("li.upload", has_text=name)
        assert item.get_attribute("data-state") == "flagged"
        assert "would refuse" in item.inner_text()
    assert not [r for r in watch.requests if r[0] == "POST" and "/v1/uploads" in r[1]][2:]  # notes.jpg only
    screenshot(page, "upload-refused")
    for name, code in (("readme.txt", "unsupported_type"), ("huge.jpg", "too_large")):
        item = page.locator("li.upload", has_text=name)
        item.get_by_role("button", name="Send anyway").click()
        page.wait_for_selector(f"li.upload[data-state=refused]:has-text('{name}')", timeout=30_000)
        assert code in item.inner_text()
    watch.assert_clean(allow=[REFUSED])


def test_gallery_shows_negotiated_thumbnails_metadata_snippet_and_deletes(host, chromium):
    gps = upload(host.url, images.gps_jpeg(), filename="holiday.jpg", content_type="image/jpeg")
    aqua = upload(host.url, PHOTOS[0].read_bytes(), filename="Aqua.jpg", content_type="image/jpeg")
    for target in (gps, aqua):
        assert wait_state(host.url, target["id"])["state"] == "ready"
    page, watch = open_page(chromium, host.url + "/gallery")
    sign_in(page, API_KEY)
    card = page.locator(f"#img-{gps['id']}")
    card.wait_for()
    page.wait_for_function("[...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)",
                           timeout=30_000)
    thumbs = page.eval_on_selector_all("img.thumb", "imgs => imgs.map(i => [i.currentSrc, i.naturalWidth, i.alt])")
    assert len(thumbs) >= 2 and all(width > 0 for _, width, _ in thumbs)
    assert {"holiday", "Aqua"} <= {alt for _, _, alt in thumbs}
    served = {url: kind for url, status, kind in watch.responses if re.search(r"/images/[^/]+/sm\d+$", url)}
    for src, _, _ in thumbs:
        assert not re.search(r"\.\w+$", src)  # no format in the URL: the browser negotiates
        assert served[src] in ("image/avif", "image/webp"), (src, served.get(src))
    # each thumbnail sits on its ThumbHash placeholder (set through the CSSOM: the CSP allows no inline style)
    backgrounds = page.eval_on_selector_all("img.thumb", "imgs => imgs.map(i => getComputedStyle(i).backgroundImage)")
    assert len(backgrounds) >= 2 and all(b.startswith('url("data:image/png;base64,') for b in backgrounds), backgrounds
    info = requests.get(f"{host.url}/v1/images/{gps['id']}", headers=auth(), timeout=10).json()
    assert info["placeholder"] in page.eval_on_selector(f"#img-{gps['id']} img.thumb", "i => i.style.backgroundImage")
    text = card.inner_text()
    assert "640 × 480" in text and "ImagehostCam" in text and "GPS stripped from public copies" in text
    card.get_by_text("Embed").click()
    snippet = card.locator("textarea").input_value()
    assert f'style="background: url({info["placeholder"]}) center / cover no-repeat"' in snippet
    root = f"{host.url}/images/{gps['id']}"
    assert f'src="{root}/w600"' in snippet and 'sizes="(max-width: 640px) 100vw, 640px"' in snippet
    assert f"{root}/w150 150w" in snippet and f"{root}/w600 600w" in snippet and "w1200" not in snippet
    assert 'alt="holiday"' in snippet and 'width="640" height="480"' in snippet
    card.get_by_text("Variant URLs").click()
    assert card.get_by_role("link", name="sm300").get_attribute("href") == f"{root}/sm300"
    assert card.get_by_role("link", name="card", exact=True).get_attribute("href") == f"{root}/card"  # a preset
    screenshot(page, "gallery")

    page.locator(f"#img-{aqua['id']}").get_by_role("button", name="Delete Aqua.jpg").click()
    page.get_by_role("button", name="Keep it").click()  # confirmation: nothing happens without it
    assert page.locator(f"#img-{aqua['id']}").is_visible()
    page.locator(f"#img-{aqua['id']}").get_by_role("button", name="Delete Aqua.jpg").click()
    assert page.get_by_role("dialog").is_visible()
    page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    page.locator(f"#img-{aqua['id']}").wait_for(state="detached")
    assert requests.get(f"{host.url}/v1/images/{aqua['id']}", headers=auth(), timeout=10).status_code == 404
    watch.assert_clean()
    watch.assert_key_kept(API_KEY, host.url)


def test_held_image_is_approved_with_a_key_press_then_shown_in_the_gallery(strict_host, chromium):
    target = upload(strict_host.url, images.jpeg(images.scene(800, 600)), filename="beach.jpg",
                    content_type="image/jpeg")
    assert wait_state(strict_host.url, target["id"])["state"] == "held"
    image_id = target["id"]
    page, watch = open_page(chromium, strict_host.url + "/review")
    page.fill("#key", API_KEY)  # an uploader's key is not a reviewer's
    page.click("#signin button[type=submit]")
    page.get_by_role("alert").filter(has_text="a reviewer key is needed").wait_for()
    assert page.is_visible("#gate") and page.evaluate("sessionStorage.length") == 0
    sign_in(page, REVIEWER_KEY)
    item = page.locator(f"li.review-item[data-id='{image_id}']")
    item.wait_for()
    page.wait_for_function("id => { const i = document.querySelector(`li.review-item[data-id='${id}'] img`);"
                           " return i && i.complete && i.naturalWidth > 0; }", arg=image_id, timeout=30_000)
    assert "0.97" in item.inner_text() and "beach.jpg" in item.inner_text()
    assert item.locator("img").get_attribute("alt") == "Preview of beach"
    # a second image arrives while the page is open: the poll shows it without a reload
    later = upload(strict_host.url, images.jpeg(images.scene(400, 300)), filename="later.jpg")
    assert wait_state(strict_host.url, later["id"])["state"] == "held"
    page.locator(f"li.review-item[data-id='{later['id']}']").wait_for(timeout=15_000)
    screenshot(page, "review")

    item.focus()
    page.keyboard.press("a")
    item.wait_for(state="detached", timeout=15_000)
    assert "Approved beach.jpg" in page.locator("#review-status").inner_text()
    assert page.evaluate("document.activeElement.dataset.id") == later["id"]  # focus moves on
    page.keyboard.press("r")  # and the next one is rejected: deleted everywhere
    page.locator(f"li.review-item[data-id='{later['id']}']").wait_for(state="detached", timeout=15_000)
    assert "Rejected later.jpg" in page.locator("#review-status").inner_text()
    assert requests.get(f"{strict_host.url}/v1/images/{later['id']}", headers=auth(), timeout=10).status_code == 404
    assert wait_state(strict_host.url, image_id, states=("ready",))["state"] == "ready"
    watch.assert_clean(allow=[REFUSED + "03"])  # the uploader's key
    watch.assert_key_kept(REVIEWER_KEY, strict_host.url)

    page.goto(strict_host.url + "/gallery")
    sign_in(page, API_KEY)
    card = page.locator(f"#img-{image_id}")
    card.wait_for()
    assert card.get_attribute("data-state") == "ready"
    page.wait_for_function("id => { const i = document.querySelector(`#img-${id} img.thumb`);"
                           " return i && i.complete && i.naturalWidth > 0; }", arg=image_id, timeout=30_000)
    src = card.locator("img.thumb").evaluate("i => i.currentSrc")
    assert "s=" in src and "e=" in src  # signing is required on this host: the page signed the URL
    assert page.locator(f"#img-{later['id']}").count() == 0
    screenshot(page, "gallery-after-review")


def test_upload_straight_to_s3_with_a_presigned_post(moto_server, clamd_socket, tmp_path, chromium):
    from tests.test_faults import s3_setup, start_worker

    env = s3_setup(moto_server, clamd_socket, tmp_path / "s3-var")
    server = start_origin(tmp_path / "var", {k: v for k, v in env.items() if k.startswith(("IMAGEHOST_", "AWS_"))})
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        csp = requests.get(server.url + "/", timeout=10).headers["Content-Security-Policy"]
        assert f"connect-src 'self' {moto_server}" in csp  # the bucket's endpoint, and nothing else
        page, watch = open_page(chromium, server.url + "/")
        sign_in(page, API_KEY)
        page.set_input_files("#files", [str(PHOTOS[1])])
        page.wait_for_selector("li.upload[data-state=ready]", timeout=90_000)
        assert page.locator("li.upload progress").evaluate("p => p.value === p.max")
        posts = [url for method, url, _ in watch.requests if method == "POST" and url.startswith(moto_server)]
        assert len(posts) == 1  # the bytes went to the bucket, not through the origin
        assert not [url for method, url, _ in watch.requests if method == "PUT"]
        watch.assert_clean()
        watch.assert_key_kept(API_KEY, server.url)
    finally:
        for proc in (worker, server.proc):
            stop(proc)
