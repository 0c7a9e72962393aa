"""The operators' commands against a real origin (gunicorn) on its data dir: `imagehost ingest`
(files, folders, s3:// on moto over HTTP, --owner, -j, resume, --scan, --moderate, the summary,
a progress bar on a terminal), `imagehost images`, `delete` (with the edge purge), `approve`,
`reject`, and `moderation-eval` on folders built here."""
from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest
import requests
from PIL import Image

from origin.config import Settings
from tests import images
from tests.backends import AWS_ENV
from tests.servers import ROOT, start_edge, start_origin, stop
from tests.test_scanner import jpeg_with_comment

pytestmark = pytest.mark.slow
NATURE = images.PHOTO_DIR / "nature"


@pytest.fixture(scope="module")
def host(tmp_path_factory, clamd_socket):
    """An origin with a generated development key (no IMAGEHOST_API_KEYS), as `make serve` has."""
    env = {"IMAGEHOST_CLAMD_SOCKET": str(clamd_socket), "IMAGEHOST_MODERATION": "fixed:0.1"}
    server = start_origin(tmp_path_factory.mktemp("admin") / "var", env, workers=1)
    server.dev_key = json.loads((server.data_dir / "secrets.json").read_text())["api_keys"].split(":")[0]
    yield server
    stop(server.proc)


def cli(host, *argv, env=None, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "origin.cli", *map(str, argv)], env={**host.env, **(env or {})},
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def api(host, method, path, key=None):
    return requests.request(method, host.url + path, headers={"Authorization": f"Bearer {key or host.dev_key}"},
                            timeout=30)


def variant(picture: Image.Image, width: int, flip: bool = False) -> bytes:
    picture = picture.resize((width, round(width * picture.height / picture.width)))
    return images.jpeg(picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else picture)


# --- issue: ingested images had an empty owner that no key could list or delete ----------------

def test_ingested_images_belong_to_the_development_keys_owner(host):
    done = cli(host, "ingest", NATURE / "Aqua.jpg")
    assert done.returncode == 0, done.stderr
    image_id = lines(done)[0]["id"]
    listed = api(host, "GET", "/v1/images").json()["items"]
    assert image_id in [item["id"] for item in listed]  # the gallery shows it
    assert api(host, "GET", f"/v1/images/{image_id}").json()["state"] == "ready"
    assert api(host, "DELETE", f"/v1/images/{image_id}").status_code == 204
    assert requests.get(f"{host.url}/images/{image_id}/original", timeout=30).status_code == 404


def test_owner_option_and_the_images_listing(host, tmp_path):
    folder = tmp_path / "photos" / "deeper"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(variant(Image.open(NATURE / "Garden.jpg"), 700))
    (folder.parent / "b.png").write_bytes(images.png_with_alpha())
    done = cli(host, "ingest", "--owner", "bob", folder.parent, "-j", "2")
    assert done.returncode == 0, done.stderr
    got = lines(done)
    assert [Path_name(g["file"]) for g in got] == ["b.png", "a.jpg"]  # the folder's own files, then its subfolder's
    assert {g["status"] for g in got} == {"imported"}
    table = cli(host, "images", "--owner", "bob")
    assert table.returncode == 0 and all(g["id"] in table.stdout for g in got)
    rows = lines(cli(host, "images", "--owner", "bob", "--state", "ready", "--json"))
    assert {r["id"] for r in rows} == {g["id"] for g in got} and {r["owner"] for r in rows} == {"bob"}
    assert not {g["id"] for g in got} & {i["id"] for i in api(host, "GET", "/v1/images").json()["items"]}


def Path_name(name: str) -> str:  # noqa: N802
    return name.rsplit("/", 1)[-1]


def test_summary_counts_duplicates_and_refusals(host, tmp_path):
    picture = Image.open(NATURE / "LadyBird.jpg").convert("RGB")
    (tmp_path / "1-big.jpg").write_bytes(variant(picture, 1600))
    (tmp_path / "2-small.jpg").write_bytes(variant(picture, 800))  # the same picture, smaller: near duplicate
    (tmp_path / "3-other.jpg").write_bytes(variant(Image.open(NATURE / "Dune.jpg"), 900, flip=True))
    (tmp_path / "4-notes.jpg").write_text("<html>not a picture</html>")
    (tmp_path / "5-empty.png").write_bytes(b"")
    first = cli(host, "ingest", "--owner", "carol", tmp_path)
    assert first.returncode == 1  # some were refused
    statuses = [g["status"] for g in lines(first)]
    assert statuses == ["imported", "near_duplicate", "imported"]
    assert "4-notes.jpg: refused" in first.stderr and "5-empty.png: refused" in first.stderr
    assert ("5 files" in first.stderr and "2 imported, 0 exact duplicates, 1 near duplicates" in first.stderr
            and "2 refused (" in first.stderr and "unsupported_type 2" in first.stderr)
    # the same bytes for another owner: an exact duplicate, stored once
    other = cli(host, "ingest", "--owner", "dave", tmp_path / "3-other.jpg")
    assert lines(other)[0]["status"] == "exact_duplicate" and "1 exact duplicates" in other.stderr


def test_a_rerun_skips_what_is_in_and_finishes_what_was_interrupted(host, tmp_path):
    photo = tmp_path / "slow.jpg"
    photo.write_bytes(variant(Image.open(NATURE / "Wood.jpg"), 1000))
    # the first run sits inside moderation (a 60 s fixed verdict) and is killed there
    proc = subprocess.Popen([sys.executable, "-m", "origin.cli", "ingest", "--owner", "erin", "--moderate", photo],
                            env={**host.env, "IMAGEHOST_MODERATION": "fixed:0.1:60"}, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        rows = []
        while time.monotonic() < deadline and not rows:
            rows = [r for r in lines(cli(host, "images", "--owner", "erin", "--json")) if r["state"] == "moderating"]
            time.sleep(0.3)
        assert rows, "the first run never reached moderation"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    interrupted = rows[0]["id"]
    second = cli(host, "ingest", "--owner", "erin", "--moderate", photo, tmp_path)  # the file twice: once in
    assert second.returncode == 0, second.stderr
    got = lines(second)
    assert got[0] == {**got[0], "id": interrupted, "status": "imported"}  # finished, not imported again
    assert got[1]["id"] == interrupted and got[1]["status"] == "already_in"
    rows = lines(cli(host, "images", "--owner", "erin", "--json"))
    assert [(r["id"], r["state"]) for r in rows] == [(interrupted, "ready")]
    third = cli(host, "ingest", "--owner", "erin", photo)
    assert lines(third)[0]["status"] == "already_in" and "1 already in" in third.stderr


def test_scan_refuses_malware_and_moderate_holds(host, tmp_path):
    (tmp_path / "shell.jpg").write_bytes(jpeg_with_comment(b'<?php system($_GET["c"]); ?>'))
    (tmp_path / "clean.jpg").write_bytes(images.jpeg(images.scene(420, 300)))
    scanned = cli(host, "ingest", "--owner", "frank", "--scan", tmp_path)
    assert scanned.returncode == 1
    assert "shell.jpg: refused: the malware scan found Imagehost.Php" in scanned.stderr and "malware 1" in scanned.stderr
    assert [g["status"] for g in lines(scanned)] == ["imported"]
    (tmp_path / "again.jpg").write_bytes(images.jpeg(images.scene(440, 300)))
    held = cli(host, "ingest", "--owner", "frank", "--moderate", tmp_path / "again.jpg",
               env={"IMAGEHOST_MODERATION": "fixed:0.97"})
    assert lines(held)[0]["status"] == "held" and "1 held for review" in held.stderr
    image_id = lines(held)[0]["id"]
    assert requests.get(f"{host.url}/images/{image_id}/original", timeout=30).status_code == 404
    approved = cli(host, "approve", image_id)
    assert approved.returncode == 0 and lines(approved) == [{"id": image_id, "state": "processing"}]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and requests.get(f"{host.url}/images/{image_id}/w300.webp",
                                                       timeout=30).status_code != 200:
        time.sleep(0.2)  # the origin's worker threads take it from here
    assert requests.get(f"{host.url}/images/{image_id}/w300.webp", timeout=30).status_code == 200
    assert cli(host, "approve", image_id).returncode == 1  # no longer held


def test_reject_and_delete_remove_everything_and_purge_the_edge(host, tmp_path):
    settings = Settings.from_env(host.env)
    edge = start_edge(settings, int(host.url.rsplit(":", 1)[1]), tmp_path / "edge")
    try:
        (tmp_path / "x.jpg").write_bytes(variant(Image.open(NATURE / "Garden.jpg"), 640, flip=True))
        done = cli(host, "ingest", "--owner", "gina", tmp_path / "x.jpg")
        image_id = lines(done)[0]["id"]
        url = f"{edge.url}/images/{image_id}/w300.webp"
        assert requests.get(url, timeout=30).status_code == 200
        assert requests.get(url, timeout=30).headers["X-Cache-Status"] == "HIT"
        gone = cli(host, "delete", image_id, "NoSuchImage0000", env={"IMAGEHOST_PURGE_URLS": edge.url})
        assert gone.returncode == 1 and "NoSuchImage0000: no such image" in gone.stderr
        assert lines(gone) == [{"id": image_id, "state": "deleted"}]
        assert requests.get(url, timeout=30).status_code == 404  # purged: not a stale HIT
        assert not (host.data_dir / "store" / "images" / image_id).exists()
        assert lines(cli(host, "images", "--owner", "gina", "--json")) == []
        (tmp_path / "y.jpg").write_bytes(images.jpeg(images.scene(460, 300)))
        held = lines(cli(host, "ingest", "--owner", "gina", "--moderate", tmp_path / "y.jpg",
                         env={"IMAGEHOST_MODERATION": "fixed:0.97"}))[0]["id"]
        rejected = cli(host, "reject", held, env={"IMAGEHOST_PURGE_URLS": edge.url})
        assert lines(rejected) == [{"id": held, "state": "deleted"}]
        assert lines(cli(host, "images", "--owner", "gina", "--json")) == []
    finally:
        stop(edge.proc)


def test_ingest_from_s3_over_http(host, moto_server, tmp_path):
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    s3.create_bucket(Bucket="legacy-originals")
    s3.put_object(Bucket="legacy-originals", Key="cms/2019/", Body=b"")  # a folder marker
    s3.put_object(Bucket="legacy-originals", Key="cms/2019/one.jpg", Body=variant(Image.open(NATURE / "Aqua.jpg"), 500))
    s3.put_object(Bucket="legacy-originals", Key="cms/2020/two.png", Body=images.png_with_alpha(320, 240))
    s3.put_object(Bucket="legacy-originals", Key="cms/readme.txt", Body=b"not a picture")
    s3.put_object(Bucket="legacy-originals", Key="other/three.jpg", Body=images.jpeg())
    done = cli(host, "ingest", "--owner", "hal", "s3://legacy-originals/cms", "-j", "2",
               env={"IMAGEHOST_S3_ENDPOINT_URL": moto_server, **AWS_ENV})
    got = lines(done)
    assert [g["file"] for g in got] == ["s3://legacy-originals/cms/2019/one.jpg", "s3://legacy-originals/cms/2020/two.png"]
    assert "s3://legacy-originals/cms/readme.txt: refused" in done.stderr and done.returncode == 1
    for g in got:
        assert requests.get(f"{host.url}/images/{g['id']}/w150.webp", timeout=30).status_code == 200
    missing = cli(host, "ingest", "s3://no-such-bucket/x", env={"IMAGEHOST_S3_ENDPOINT_URL": moto_server, **AWS_ENV})
    assert missing.returncode != 0 and "Traceback" not in missing.stderr and "no-such-bucket" in missing.stderr


def test_a_progress_bar_with_rate_and_eta_on_a_terminal(host, tmp_path):
    for n, name in enumerate(("RainDrops.jpg", "Storm.jpg", "YellowFlower.jpg")):
        (tmp_path / f"p{n}.jpg").write_bytes(variant(Image.open(NATURE / name), 480))
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "origin.cli", "ingest", "--owner", "ivy", tmp_path],
                            env={**host.env, "COLUMNS": "100", "TERM": "xterm-256color"}, cwd=ROOT, stdin=follower, stdout=follower,
                            stderr=follower)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(leader)
    text = seen.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "3/3" in text and "img/s" in text and "ETA" in text
    assert "3 imported" in text and text.count('"status": "imported"') == 3


def test_moderation_eval_prints_precision_recall_and_a_curve(host, tmp_path):
    from origin.admin.moderation_eval import point
    from origin.wiring import open_moderator

    pos, neg = tmp_path / "should-hold", tmp_path / "fine"
    (pos / "nested").mkdir(parents=True)
    neg.mkdir()
    # no explicit picture is ever made here: real photos labelled by the test, scored by the real model
    for n, name in enumerate(("Aqua.jpg", "Garden.jpg")):
        (pos / "nested" / f"{n}.jpg").write_bytes(variant(Image.open(NATURE / name), 400))
    for n, name in enumerate(("LadyBird.jpg", "Dune.jpg", "Wood.jpg")):
        (neg / f"{n}.jpg").write_bytes(variant(Image.open(NATURE / name), 400))
    (neg / "junk.jpg").write_text("not a picture")
    moderator = open_moderator("open_nsfw")
    scores = {p: moderator.score(p.read_bytes()).score for p in (*pos.rglob("*.jpg"), *neg.glob("[0-9].jpg"))}
    threshold = sorted(scores.values())[2]  # some above, some below: every cell of the table is exercised
    done = cli(host, "moderation-eval", pos, neg, "--model", "open_nsfw", "--threshold", threshold, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    expected = point([scores[p] for p in pos.rglob("*.jpg")], [scores[p] for p in neg.glob("[0-9].jpg")], threshold)
    assert report["at_threshold"] == expected.as_dict()
    assert report["positives"] == 2 and report["negatives"] == 3 and report["unscored"] == [str(neg / "junk.jpg")]
    assert [p["threshold"] for p in report["curve"]] == sorted({round(0.05 * i, 2) for i in range(1, 20)} | {threshold})
    table = cli(host, "moderation-eval", pos, neg, "--model", "open_nsfw")
    assert "precision" in table.stdout and "recall" in table.stdout and "<- IMAGEHOST_NSFW_THRESHOLD" in table.stdout


def test_precision_and_recall_arithmetic():
    from origin.admin.moderation_eval import point

    p = point([0.9, 0.8, 0.3, 0.7], [0.1, 0.65, 0.2, 0.05, 0.0], 0.6)
    assert (p.tp, p.fp, p.fn, p.tn) == (3, 1, 1, 4)
    assert p.precision == 0.75 and p.recall == 0.75 and p.benign_held == 0.2
    assert point([], [0.1], 0.5).precision is None and point([], [0.1], 0.5).recall is None
