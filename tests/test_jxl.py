"""JPEG XL output (origin/pipeline/jxl.py): the codec's licences, the encode, and negotiation at the origin and
through the nginx edge: served only to clients that name image/jxl."""
from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

import numpy as np
import pytest
import pyvips
import requests

from edge import negotiation
from origin.config import Settings
from origin.ingest import process
from origin.pipeline import deferral, jxl
from origin.pipeline.negotiate import choose
from origin.pipeline.render import Encoding, RenderOptions, render
from tests import images, quality
from tests.servers import start_edge, start_edge_origin, stop
from tests.test_edge_units import BROWSERS

NON_PERMISSIVE = re.compile(r"GNU (?:AFFERO |LESSER |LIBRARY )?GENERAL PUBLIC LICEN[SC]E|\bA?GPL|\bLGPL|"
                            r"Server Side Public License|Commons Clause|Business Source License", re.IGNORECASE)
# licence texts that name the GPL without binding anyone to it
GPL_MENTIONS = {
    # LibLZF: BSD-2-Clause; its authors also let the C files be relicensed under the GPLv2 (a choice
    # for those who want it, not a condition)
    "LICENSE-lzf": "explicitly allows relicensing under the GPLv2",
}
# shared libraries the wheel bundles without a licence file of their own (auditwheel's SBOM)
BUNDLED_RUNTIMES = {
    # GCC's OpenMP runtime: GPL-3.0-or-later WITH GCC-exception-3.1, the runtime library exception that
    # lets programs under any licence link and ship it (as numpy's and scipy's wheels do)
    "libgomp": "GCC-exception-3.1",
}
ACCEPT_JXL = "image/jxl,image/webp,*/*;q=0.8"


def test_the_imagecodecs_wheel_bundles_nothing_copyleft():
    """Every licence text the installed wheel ships, and every library auditwheel grafted into it from the
    build system (its SBOM), is permissive or carries an exception that makes it so."""
    dist = importlib.metadata.distribution("imagecodecs")
    assert "BSD-3-Clause" in (dist.metadata["License"] or "") + (dist.metadata["License-Expression"] or "")
    files = [(str(f), Path(f.locate())) for f in dist.files or []]
    licences = [(name, path) for name, path in files if "/licenses/" in name]
    assert len(licences) > 40, "the wheel ships one licence per codec it builds in"
    assert any(name.endswith("LICENSE-libjxl") for name, _ in licences)
    offending = []
    for name, path in licences:
        text = path.read_text(errors="replace")
        short = name.rsplit("/", 1)[-1]
        if NON_PERMISSIVE.search(text) and not (short in GPL_MENTIONS and GPL_MENTIONS[short] in text):
            offending.append(short)
    assert not offending, f"licences naming a copyleft licence: {offending}"
    sbom = next(path for name, path in files if name.endswith(".cdx.json"))
    grafted = {c["name"] for c in json.loads(sbom.read_text())["components"]} - {"imagecodecs"}
    assert grafted <= set(BUNDLED_RUNTIMES), f"libraries from the build system, of unknown licence: {grafted}"
    libs = [name for name, _ in files if name.startswith("imagecodecs.libs/")]
    assert any("libjxl-" in name for name in libs)
    assert not [name for name in libs if re.search(r"/lib(heif|x26[45]|de265|gpl)", name)]  # LGPL/GPL codecs


def test_a_jxl_render_decodes_to_its_size_and_keeps_alpha():
    photo = images.PHOTOS[0].read_bytes()
    head = pyvips.Image.new_from_buffer(photo, "")
    data = render(photo, RenderOptions("w", 300, "jxl", head.width, head.height), Encoding())
    assert data[:2] == b"\xff\x0a" or data[4:8] == b"JXL "
    pixels = jxl.decode(data)
    assert pixels.shape == (round(head.height * 300 / head.width), 300, 3) and pixels.dtype == np.uint8
    alpha = (images.PHOTO_DIR / "abstract" / "Arc-Colors-Transparent-Wallpaper.png").read_bytes()
    head = pyvips.Image.new_from_buffer(alpha, "")
    pixels = jxl.decode(render(alpha, RenderOptions("w", 300, "jxl", head.width, head.height), Encoding()))
    assert pixels.shape[1:] == (300, 4) and pixels[..., 3].min() < 255  # transparency kept


def test_a_profiled_picture_is_converted_to_srgb():
    """imagecodecs' encoder takes no ICC profile: the pixels are converted with it, as a browser would."""
    photo = pyvips.Image.thumbnail(str(images.PHOTOS[1]), 256).copy_memory()
    profiled = photo.icc_transform("p3", input_profile="srgb")  # Display P3 pixels, the P3 profile embedded
    assert profiled.get_typeof("icc-profile-data")
    srgb_again = profiled.icc_transform("srgb", embedded=True)
    got = jxl.pixels(profiled).astype(int)
    want = np.ndarray(buffer=srgb_again.write_to_memory(), dtype=np.uint8,
                      shape=(srgb_again.height, srgb_again.width, srgb_again.bands)).astype(int)
    assert abs(got - want).max() <= 1
    raw = np.ndarray(buffer=profiled.write_to_memory(), dtype=np.uint8,
                     shape=(profiled.height, profiled.width, profiled.bands)).astype(int)
    assert abs(raw - want).max() > 5, "the profile changes the pixels: the conversion did something"


def test_exif_comes_from_the_container_and_a_brotli_bomb_is_only_missing_metadata():
    import tracemalloc

    import imagecodecs
    from PIL import Image

    exif = Image.Exif()
    exif.load(process.jxl_exif(images.jxl_from_jpeg(images.gps_jpeg())))  # libjxl's brob box, Brotli-compressed
    assert exif[0x010F] == "ImagehostCam" and exif.get_ifd(0x8825)
    assert process.jxl_exif(images.jxl()) is None  # a bare codestream has no boxes
    signature = images.jxl_from_jpeg(images.jpeg())[:32]  # JXL signature and ftyp boxes
    bomb = imagecodecs.brotli_encode(b"\0\0\0\0" + b"\0" * (50 << 20))
    box = (8 + 4 + len(bomb)).to_bytes(4, "big") + b"brobExif" + bytes(bomb)
    tracemalloc.start()
    assert process.jxl_exif(signature + box) is None
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * process.EXIF_MAX, peak  # never near the 50 MB it would inflate to


def test_jxl_is_chosen_only_when_named():
    assert choose(ACCEPT_JXL, False) == "jxl" == negotiation.format_class(ACCEPT_JXL)
    assert choose("image/jxl", True) == "jxl"
    for name, (accept, expected) in BROWSERS.items():
        assert choose(accept, False) != "jxl", name  # not Chrome, not Safari 17 (it names AVIF first)
    for accept in ("image/*", "*/*", "image/jxl;q=0,image/webp", "image/jxlx,image/webp", None):
        assert choose(accept, False) != "jxl" and negotiation.format_class(accept) != "jxl", accept
    assert negotiation.CANONICAL_ACCEPT["jxl"] == "image/jxl"


def test_a_deferred_jxl_miss_falls_back_to_webp_never_avif():
    def now(fmt, width):
        return deferral.answer_now(fmt, False, RenderOptions("w", width, fmt, 4000, 3000), Encoding(), 100)

    assert now("jxl", 300) == "jxl"  # 0.07 MP: fits the budget
    assert now("jxl", 960) == "webp"  # 0.69 MP: JPEG XL (effort 5) would not, WebP does
    assert now("jxl", 2400) == "jpeg"
    assert "jxl" not in [now("avif", w) for w in (300, 960, 1200, 2400)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("jxl-edge")
    origin = start_edge_origin(root / "var", {}, workers=2)
    edge = start_edge(Settings.from_env(origin.env), int(origin.url.rsplit(":", 1)[1]), root / "edge")
    result = origin.ingest(images.PHOTOS[2])
    assert result.returncode == 0, result.stderr
    yield origin, edge, json.loads(result.stdout.splitlines()[0])["id"]
    stop(edge.proc)
    stop(origin.proc)


@pytest.mark.slow
def test_jxl_through_the_origin_and_the_nginx_edge(stack):
    origin, edge, image_id = stack
    head = pyvips.Image.new_from_file(str(images.PHOTOS[2]))
    want = (round(head.height * 600 / head.width), 600)
    for base in (origin.url, edge.url):
        explicit = requests.get(f"{base}/images/{image_id}/w600.jxl", timeout=60)
        assert explicit.status_code == 200 and explicit.headers["Content-Type"] == "image/jxl"
        assert jxl.decode(explicit.content).shape[:2] == want
    seen = {}
    for name, accept in [("jxl", ACCEPT_JXL), ("jxl-again", "image/jxl"), *[(n, a) for n, (a, _) in BROWSERS.items()]]:
        resp = requests.get(f"{edge.url}/images/{image_id}/w600", headers={"Accept": accept} if accept else {},
                            timeout=60)
        assert resp.status_code == 200 and resp.headers["Vary"] == "Accept", name
        seen[name] = (resp.headers["Content-Type"], resp.headers["X-Cache-Status"], resp.content)
    assert seen["jxl"][0] == seen["jxl-again"][0] == "image/jxl"
    assert (seen["jxl"][1], seen["jxl-again"][1]) == ("MISS", "HIT") and seen["jxl"][2] == seen["jxl-again"][2]
    assert jxl.decode(seen["jxl"][2]).shape[:2] == want
    assert all(ctype != "image/jxl" for name, (ctype, _, _) in seen.items() if not name.startswith("jxl"))
    ssim = quality.score(requests.get(f"{origin.url}/images/{image_id}/w600.png", timeout=60).content,
                         pyvips.Image.thumbnail(str(images.PHOTOS[2]), 600))
    assert ssim > 0.99  # the page renders; the JPEG XL bytes decode to the same picture size
    purged = requests.post(f"{edge.url}/purge/images/{image_id}", timeout=10)
    assert purged.status_code == 200 and purged.json()["removed"] >= 3
    again = requests.get(f"{edge.url}/images/{image_id}/w600", headers={"Accept": ACCEPT_JXL}, timeout=60)
    assert again.headers["X-Cache-Status"] == "MISS" and again.headers["Content-Type"] == "image/jxl"


@pytest.mark.slow
def test_jxl_through_the_varnish_edge(stack, tmp_path):
    from tests.test_edge_varnish import HAVE_VARNISH, start_varnish

    if not HAVE_VARNISH:
        pytest.skip("needs Debian's varnish and varnish-vmod-digest")
    origin, _, image_id = stack
    url, proc = start_varnish(Settings.from_env(origin.env), origin, tmp_path)
    try:
        seen = {}
        for name, accept in [("jxl", ACCEPT_JXL), ("jxl-again", "image/jxl;q=0.9, */*"), ("safari17",
                             BROWSERS["safari17"][0]), ("safari15", BROWSERS["safari15"][0])]:
            resp = requests.get(f"{url}/images/{image_id}/w300", headers={"Accept": accept}, timeout=60)
            assert resp.status_code == 200, name
            seen[name] = (resp.headers["Content-Type"], resp.headers["X-Cache-Status"], resp.content)
        assert [seen[n][:2] for n in ("jxl", "jxl-again")] == [("image/jxl", "MISS"), ("image/jxl", "HIT")]
        assert jxl.decode(seen["jxl"][2]).shape[1] == 300
        assert (seen["safari17"][0], seen["safari15"][0]) == ("image/avif", "image/webp")
        banned = requests.post(f"{url}/purge/images/{image_id}", timeout=10)
        assert banned.status_code == 200
        again = requests.get(f"{url}/images/{image_id}/w300", headers={"Accept": ACCEPT_JXL}, timeout=60)
        assert again.headers["X-Cache-Status"] == "MISS" and again.headers["Content-Type"] == "image/jxl"
    finally:
        stop(proc)
