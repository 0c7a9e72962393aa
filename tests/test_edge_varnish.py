"""The Varnish edge (edge/imagehost.vcl.template) on loopback: negotiation, hotlink checks, ban purge."""
from __future__ import annotations

import glob
import json
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from edge.varnish import render_vcl, varnishd_command
from origin.config import Settings
from origin.ports.cdn_nginx import EdgePurger
from origin.security.signing import SigningKeys, sign_path
from tests import images
from tests.servers import free_port, start_edge_origin, stop, wait_for_port
from tests.test_edge_units import BROWSERS

HAVE_VARNISH = Path("/usr/sbin/varnishd").exists() and bool(glob.glob("/usr/lib/*/varnish/vmods/libvmod_digest.so"))
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not HAVE_VARNISH, reason="needs Debian's varnish and varnish-vmod-digest")]


def start_varnish(settings, origin, folder):
    port = free_port()
    vcl = render_vcl(settings, origin.url.removeprefix("http://"), folder / "imagehost.vcl")
    log = open(folder / "varnishd.log", "ab")
    proc = subprocess.Popen(varnishd_command(vcl, f"127.0.0.1:{port}", folder / "work"), stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=30, proc=proc)
    except RuntimeError:
        proc.kill()
        raise RuntimeError((folder / "varnishd.log").read_text()[-3000:])
    return f"http://127.0.0.1:{port}", proc


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("varnish")
    origin = start_edge_origin(root / "var", {"IMAGEHOST_REFERERS": "good.example"}, workers=2)
    settings = Settings.from_env(origin.env)
    url, proc = start_varnish(settings, origin, root / "plain")
    signed_url, signed_proc = start_varnish(replace(settings, signing_required=True, signing_keys="k2:new,k1:old"),
                                            origin, root / "signed")
    result = origin.ingest(images.PHOTOS[0], images.PHOTOS[1])
    assert result.returncode == 0, result.stderr
    ids = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    yield origin, url, signed_url, ids
    for p in (proc, signed_proc):
        stop(p)
    stop(origin.proc)


def get(url, **headers):
    return requests.get(url, headers=headers, timeout=60)


def test_negotiation_classes_share_entries(stack):
    origin, url, _, ids = stack
    seen = {}
    for name in ("chrome", "firefox", "safari17", "safari15", "firefox_old", "curl"):
        accept, expected = BROWSERS[name]
        resp = get(f"{url}/images/{ids[0]}/w300?v={name}", Accept=accept)
        assert resp.status_code == 200 and resp.headers["Content-Type"] == f"image/{expected}", name
        seen.setdefault(expected, []).append(resp.headers["X-Cache-Status"])
    assert seen == {"avif": ["MISS", "HIT", "HIT"], "webp": ["MISS", "HIT"], "jpeg": ["MISS"]}


def test_referer_checked_on_hits(stack):
    origin, url, _, ids = stack
    path = f"{url}/images/{ids[0]}/w150.webp"
    assert get(path, Referer="https://good.example/").headers["X-Cache-Status"] == "MISS"
    assert get(path).headers["X-Cache-Status"] == "HIT"
    refused = get(path, Referer="https://evil.test/", **{"X-Error-Fields": ',"injected":1'})
    assert refused.status_code == 403 and refused.json()["error"] == "hotlink_refused"
    assert "injected" not in refused.json()  # a refusal's fields come from the VCL alone


def test_ban_purge(stack):
    origin, url, _, ids = stack
    variants = ("w600.webp", "sq64.jpeg", "placeholder")
    paths = [f"{url}/images/{image_id}/{variant}" for image_id in ids for variant in variants]
    for path in paths:
        get(path)
        assert get(path).headers["X-Cache-Status"] == "HIT"
    purger = EdgePurger([url], origin.data_dir / "cdn", start=False)
    purger.purge(ids[0])
    assert purger.pending() == []
    assert [get(path).headers["X-Cache-Status"] for path in paths] == ["MISS"] * 3 + ["HIT"] * 3
    assert get(f"{url}/images/{ids[0]}/w600", Accept=BROWSERS["chrome"][0]).status_code == 200
    bad = requests.post(f"{url}/purge/images/..", timeout=10)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"


def test_signed_urls_in_vcl(stack):
    origin, _, url, ids = stack
    path = f"/images/{ids[1]}/w150.jpeg"
    for keys in ("k2:new", "k1:old"):
        resp = get(url + sign_path(SigningKeys.parse(keys), path, 60))
        assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/jpeg", resp.text
    good = sign_path(SigningKeys.parse("k2:new"), path, 60)
    for bad, message in ((path, "must be signed"), (good.replace("e=", "e=1"), "does not match"),
                         (sign_path(SigningKeys.parse("k3:new"), path, 60), "unknown"),
                         (sign_path(SigningKeys.parse("k2:new"), path, 5, now=time.time() - 60), "expired")):
        resp = get(url + bad)
        assert resp.status_code == 403 and message in resp.json()["message"], bad


def test_presets_negotiate_share_entries_and_are_banned(stack):
    origin, url, signed_url, ids = stack
    seen = {}
    for name in ("chrome", "firefox", "safari17", "safari15", "curl"):
        accept, expected = BROWSERS[name]
        resp = get(f"{url}/images/{ids[1]}/card?v={name}", Accept=accept)  # a default preset
        assert resp.status_code == 200 and resp.headers["Content-Type"] == f"image/{expected}", name
        assert images.size(resp.content) == (800, 450) and resp.headers["Vary"] == "Accept"
        seen.setdefault(expected, []).append(resp.headers["X-Cache-Status"])
    assert seen == {"avif": ["MISS", "HIT", "HIT"], "webp": ["MISS"], "jpeg": ["MISS"]}
    explicit = f"{url}/images/{ids[1]}/content.webp"
    assert get(explicit).headers["X-Cache-Status"] == "MISS" and get(explicit).headers["X-Cache-Status"] == "HIT"
    EdgePurger([url], origin.data_dir / "cdn", start=False).purge(ids[1])
    assert get(explicit).headers["X-Cache-Status"] == "MISS"
    assert get(f"{url}/images/{ids[1]}/card", Accept=BROWSERS["chrome"][0]).headers["X-Cache-Status"] == "MISS"


def test_signed_presets_in_vcl(stack):
    origin, _, url, ids = stack
    path = f"/images/{ids[1]}/avatar.webp"
    resp = get(url + sign_path(SigningKeys.parse("k2:new"), path, 60))
    assert resp.status_code == 200 and images.size(resp.content) == (128, 128), resp.text
    refused = get(url + path)
    assert refused.status_code == 403 and "must be signed" in refused.json()["message"]


def test_the_vcl_hashes_a_presets_digest(tmp_path):
    one = render_vcl(Settings(presets="card=fill 800x450 smart"), "127.0.0.1:1", tmp_path / "a.vcl").read_text()
    two = render_vcl(Settings(presets="card=fill 600x600 smart"), "127.0.0.1:1", tmp_path / "b.vcl").read_text()
    digests = [Settings(presets=p).named_presets.get("card").digest for p in ("card=fill 800x450 smart",
                                                                              "card=fill 600x600 smart")]
    assert f'hash_data("{digests[0]}")' in one and f'hash_data("{digests[1]}")' in two


@pytest.mark.parametrize("variant", ["w0300.webp", "w301", "sq2400.webp", "w300.tiff", "w300%0A", "poster",
                                     "poster.webp", "card.bmp", "card.", "Card", "sm0", "w601.avif"])
def test_urls_off_the_allow_list_are_refused_at_the_edge(stack, variant):
    origin, url, signed_url, ids = stack
    answer = get(f"{url}/images/{ids[0]}/{variant}")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request", answer.text
    direct, said = get(f"{origin.url}/images/{ids[0]}/{variant}").json(), answer.json()
    assert said == {key: direct[key] for key in said}, (said, direct)  # in the origin's words and lists
    assert said.keys() | {"variant"} >= direct.keys(), (said, direct)
    assert get(f"{url}/images/{ids[0]}/w300.webp").status_code == 200


def origin_request_ids(origin) -> set[str]:
    lines = (origin.data_dir / "gunicorn.log").read_text().splitlines()
    return {json.loads(line).get("request_id") for line in lines if line.startswith("{")}


def test_every_answer_carries_this_requests_id_which_the_origin_logs(stack):
    origin, url, _, ids = stack
    path = f"{url}/images/{ids[1]}/w300.jpeg"
    miss = get(path, **{"X-Request-Id": "client-chosen-id"})
    hit = get(path)
    refused = get(f"{url}/images/{ids[1]}/w301")
    assert (miss.headers["X-Cache-Status"], hit.headers["X-Cache-Status"], refused.status_code) == ("MISS", "HIT", 400)
    rids = [answer.headers["X-Request-Id"] for answer in (miss, hit, refused)]
    assert all(len(rid) == 32 for rid in rids) and len(set(rids)) == 3, rids  # never the client's, never the miss's
    deadline = time.monotonic() + 10
    while rids[0] not in origin_request_ids(origin) and time.monotonic() < deadline:
        time.sleep(0.1)
    seen = origin_request_ids(origin)
    assert rids[0] in seen and not {rids[1], rids[2]} & seen  # only the miss reached the origin
