"""Dedup end to end, as deployed: real gunicorn with its in-process workers, the local store's
signed upload URLs, real clamd, the SQLite catalog; `imagehost compact` killed with SIGKILL after
each of its steps while clients keep fetching every URL."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
import time

import pytest
import requests
from PIL import Image

from origin.ingest.compact import STEPS
from origin.ports.hash_index import hamming, phash_int
from tests import images
from tests.servers import ROOT, start_origin, stop
from tests.uploads import API_KEY, KEYS_ENV, OTHER_KEY, auth, upload, wait_state

CAROL_KEY, DAVE_KEY = "test-key-carol", "test-key-dave"
ELEPHANTS = images.PHOTO_DIR / "abstract"
NATURE = images.PHOTO_DIR / "nature"
ENV = {**KEYS_ENV, "IMAGEHOST_API_KEYS": f"{KEYS_ENV['IMAGEHOST_API_KEYS']},{CAROL_KEY}:carol,{DAVE_KEY}:dave",
       "IMAGEHOST_MODERATION": "fixed:0.1", "IMAGEHOST_DEDUP_PERCEPTUAL_OPTOUT": "dave"}


@pytest.fixture(scope="module")
def host(tmp_path_factory, clamd_socket):
    env = {**ENV, "IMAGEHOST_CLAMD_SOCKET": str(clamd_socket)}
    server = start_origin(tmp_path_factory.mktemp("dedup") / "var", env)
    yield server
    stop(server.proc)


def ready(base: str, data: bytes, key: str = API_KEY, timeout: float = 90) -> dict:
    target = upload(base, data, key=key, content_type="image/jpeg")
    info = wait_state(base, target["id"], key=key, timeout=timeout)
    assert info["state"] == "ready", info
    return info


def folder(host, image_id: str, top: str = "images"):
    cold = host.data_dir / "store-tiers" / "GLACIER_IR" / top / image_id
    if top == "sources" and cold.is_dir():  # kept sources of 128 KiB and more go cold at once
        return cold
    return host.data_dir / "store" / top / image_id


def wait_gone(path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while path.exists():
        assert time.monotonic() < deadline, f"{path} is still there"
        time.sleep(0.1)


def fetch(url: str, **headers) -> requests.Response:
    resp = requests.get(url, headers=headers, timeout=60)
    assert resp.status_code == 200, (url, resp.status_code, resp.text[:200])
    return resp


def phash_of(data: bytes) -> int:
    return phash_int(Image.open(io.BytesIO(data)).convert("RGB"))


def download(info: dict, key: str) -> bytes:
    return fetch(info["urls"]["download"], **auth(key)).content


def metric(base: str, name: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=10).text
    return sum(float(v) for v in re.findall(rf"^{re.escape(name)} (\S+)$", text, re.M))


def test_two_owners_upload_the_same_bytes(host):
    photo = images.gps_jpeg()
    alice, bob = ready(host.url, photo), ready(host.url, photo, key=OTHER_KEY)
    assert alice["id"] != bob["id"] and alice["sha256"] == bob["sha256"]
    assert folder(host, alice["id"]).is_dir() and not folder(host, bob["id"]).exists()  # one content
    assert [p.name for p in folder(host, alice["id"]).glob("source.*")] == ["source.jpg"]
    for info in (alice, bob):
        resp = fetch(info["urls"]["widths"]["w300"], Accept="image/avif")
        assert resp.headers["Content-Type"] == "image/avif" and not images.has_gps(resp.content)
    assert download(alice, API_KEY) == photo and download(bob, OTHER_KEY) == photo  # GPS and all
    assert requests.get(bob["urls"]["download"], headers=auth(API_KEY), timeout=10).status_code == 404
    assert metric(host.url, 'imagehost_duplicates_total{kind="exact"}') >= 1
    assert metric(host.url, "imagehost_dedup_bytes_saved_total") >= len(photo)


def test_the_same_photo_at_two_resolutions_in_both_orders(host):
    small_bytes = (ELEPHANTS / "Elephants.jpg").read_bytes()  # 1920 x 1080
    big_bytes = (ELEPHANTS / "Elephants_3840x2160.jpg").read_bytes()
    alice = ready(host.url, small_bytes)
    before = phash_of(fetch(alice["urls"]["widths"]["w600"], Accept="image/webp").content)
    assert images.size(fetch(alice["urls"]["widths"]["w2400"], Accept="image/webp").content)[0] == 1920
    # a bigger one arrives: it becomes the content, alice's record moves to it
    bob = ready(host.url, big_bytes, key=OTHER_KEY)
    wait_gone(folder(host, alice["id"]))  # reclaimed after the grace
    assert folder(host, bob["id"]).is_dir()
    after = fetch(alice["urls"]["widths"]["w600"], Accept="image/webp").content
    assert hamming(phash_of(after), before) <= 6  # the same picture
    assert images.size(fetch(alice["urls"]["widths"]["w2400"], Accept="image/webp").content) == (2400, 1350)
    assert download(alice, API_KEY) == small_bytes and download(bob, OTHER_KEY) == big_bytes
    # a smaller one arrives after the bigger: it is linked to it, nothing of it is kept but its upload
    carol = ready(host.url, small_bytes, key=CAROL_KEY)
    wait_gone(folder(host, carol["id"]))
    assert images.size(fetch(carol["urls"]["widths"]["w2400"], Accept="image/webp").content) == (2400, 1350)
    assert download(carol, CAROL_KEY) == small_bytes
    for info in (alice, carol):
        assert folder(host, info["id"], "sources").is_dir()
    assert metric(host.url, 'imagehost_duplicates_total{kind="perceptual"}') >= 2


def test_bulk_ingest_stores_the_same_file_once(host):
    path = NATURE / "Wood.jpg"
    done = host.ingest(path, path)
    assert done.returncode == 0, done.stderr
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first["status"] == "imported" and folder(host, first["id"]).is_dir()
    assert second == {**first, "status": "already_in"}  # the owner has these bytes: the same image
    resp = fetch(f"{host.url}/images/{first['id']}/w300", Accept="image/webp")
    assert images.size(resp.content)[0] == 300
    # another owner's import of the same bytes is an alias of the stored content: nothing stored again
    other = subprocess.run([sys.executable, "-m", "origin.cli", "ingest", "--owner", "someone-else", str(path)],
                           env=host.env, capture_output=True, text=True, cwd=ROOT, timeout=120)
    alias = json.loads(other.stdout)
    assert alias["status"] == "exact_duplicate" and not folder(host, alias["id"]).exists()
    resp = fetch(f"{host.url}/images/{alias['id']}/w300", Accept="image/webp")
    assert images.size(resp.content)[0] == 300


def test_different_photos_are_not_collapsed(host):
    infos = [ready(host.url, (NATURE / name).read_bytes()) for name in ("Aqua.jpg", "Garden.jpg", "TwoWings.jpg")]
    for info in infos:
        assert folder(host, info["id"]).is_dir()


def test_an_opted_out_owners_uploads_are_never_collapsed_perceptually(host):
    picture = Image.open(NATURE / "Dune.jpg").convert("RGB")  # each test its own picture: no collapse across
    picture = picture.resize((900, round(900 * picture.height / picture.width)))
    dave = ready(host.url, images.jpeg(picture), key=DAVE_KEY)
    smaller = picture.resize((810, round(810 * picture.height / picture.width)))
    alice = ready(host.url, images.jpeg(smaller))  # near dave's: not collapsed into it
    dave_small = ready(host.url, images.jpeg(smaller, quality=60), key=DAVE_KEY)
    time.sleep(4)  # past the grace: nothing was reclaimed
    for info in (dave, alice, dave_small):
        assert folder(host, info["id"]).is_dir()
    again = ready(host.url, images.jpeg(picture), key=OTHER_KEY)  # exact dedup applies to everyone
    assert not folder(host, again["id"]).exists()


def test_deleting_one_alias_keeps_the_other_and_the_last_removes_the_content(host):
    photo = (NATURE / "GreenMeadow.jpg").read_bytes()
    alice, bob = ready(host.url, photo), ready(host.url, photo, key=OTHER_KEY)
    assert requests.delete(f"{host.url}/v1/images/{alice['id']}", headers=auth(), timeout=10).status_code == 204
    time.sleep(2.2)  # the origin caches a record for up to 2 s
    assert requests.get(alice["urls"]["widths"]["w300"], timeout=10).status_code == 404
    fetch(bob["urls"]["widths"]["w300"])
    assert download(bob, OTHER_KEY) == photo and folder(host, alice["id"]).is_dir()
    assert requests.delete(f"{host.url}/v1/images/{bob['id']}", headers=auth(OTHER_KEY), timeout=10).status_code == 204
    assert not folder(host, alice["id"]).exists()  # the last reference: the content is gone from the store
    time.sleep(2.2)
    assert requests.get(bob["urls"]["widths"]["w300"], timeout=10).status_code == 404


def test_compaction_killed_after_each_step_never_breaks_a_url(tmp_path, clamd_socket):
    env = {**ENV, "IMAGEHOST_CLAMD_SOCKET": str(clamd_socket), "IMAGEHOST_DEDUP_INLINE": "0"}
    server = start_origin(tmp_path / "var", env)
    try:
        small_bytes = images.jpeg(images.scene(720, 540))
        small, twin = ready(server.url, small_bytes), ready(server.url, small_bytes, key=OTHER_KEY)
        big = ready(server.url, images.jpeg(images.scene(800, 600)), key=CAROL_KEY)
        assert folder(server, small["id"]).is_dir() and folder(server, big["id"]).is_dir()  # not collapsed
        urls = [info["urls"][kind] if kind == "original" else info["urls"]["widths"]["w300"]
                for info in (small, twin, big) for kind in ("original", "widths")]
        urls += [info["urls"]["square"]["sq150"] for info in (small, twin, big)]
        reference = {url: phash_of(fetch(url, Accept="image/webp").content) for url in urls}
        failures, served, stop_fetching = [], [], threading.Event()

        def keep_fetching():
            while not stop_fetching.is_set():
                for url in urls:
                    resp = requests.get(url, headers={"Accept": "image/webp"}, timeout=60)
                    if resp.status_code != 200 or hamming(phash_of(resp.content), reference[url]) > 6:
                        failures.append((url, resp.status_code))
                    served.append(url)

        fetcher = threading.Thread(target=keep_fetching, daemon=True)
        fetcher.start()
        compact = [sys.executable, "-m", "origin.cli", "compact"]
        for step in STEPS:
            killed = subprocess.run(compact, env={**server.env, "IMAGEHOST_COMPACT_STOP_AFTER": step}, cwd=ROOT,
                                    capture_output=True, text=True, timeout=120)
            assert killed.returncode == -9, (step, killed.stderr[-2000:])
            time.sleep(0.5)
        done = subprocess.run(compact, env=server.env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        time.sleep(2.5)  # past the record caches: every URL now reads the catalog afresh
        stop_fetching.set()
        fetcher.join(timeout=60)
        assert failures == [] and len(served) > len(urls) * len(STEPS)
        assert not folder(server, small["id"]).exists() and folder(server, big["id"]).is_dir()
        assert folder(server, small["id"], "sources").is_dir()
        assert download(small, API_KEY) == small_bytes and download(twin, OTHER_KEY) == small_bytes
        for url in urls:  # the small uploads now serve the better content: the same picture
            assert hamming(phash_of(fetch(url, Accept="image/webp").content), reference[url]) <= 6
        assert images.size(fetch(small["urls"]["widths"]["w600"], Accept="image/webp").content) == (600, 450)
        assert json.loads(done.stdout)["repointed"] == 0  # the killed runs had done it; this one finished up
        assert metric(server.url, 'imagehost_duplicates_total{kind="perceptual"}') == 1
    finally:
        stop(server.proc)
