"""`python -m edge.run` (make serve) brings up origin + nginx on free ports; an ingested image comes out as AVIF."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests import images
from tests.servers import ROOT, free_port
from tests.test_edge_units import BROWSERS

pytestmark = pytest.mark.slow


def launch(tmp_path, **extra):
    port, origin_port = free_port(), free_port()
    env = {**os.environ, "IMAGEHOST_PORT": str(port), "IMAGEHOST_ORIGIN_PORT": str(origin_port),
           "IMAGEHOST_DATA_DIR": str(tmp_path / "var"), "IMAGEHOST_WORKERS": "1", "IMAGEHOST_SCAN": "0",
           "IMAGEHOST_MODERATION": "off", "IMAGEHOST_WORKER_THREADS": "0", **extra}
    for name in ("IMAGEHOST_API_KEYS", "IMAGEHOST_SIGNING_KEYS", "IMAGEHOST_PURGE_URLS", "IMAGEHOST_BIND"):
        env.pop(name, None)
    out = open(tmp_path / "launcher.out", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "edge.run"], env=env, cwd=ROOT, stdout=out,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp_path / "launcher.out").read_text()
        try:
            if requests.get(url + "/healthz", timeout=5).status_code == 200:
                return proc, url, env, origin_port
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError((tmp_path / "launcher.out").read_text())


def shut_down(proc, tmp_path):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=40) == 0, (tmp_path / "launcher.out").read_text()


def test_launcher_serves_an_ingested_image_as_avif_through_the_edge(tmp_path):
    proc, url, env, origin_port = launch(tmp_path)
    try:
        result = subprocess.run([sys.executable, "-m", "origin.cli", "ingest", str(images.PHOTOS[1])], env=env,
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        line = json.loads(result.stdout)
        assert line["url"] == f"{url}/images/{line['id']}/original"
        path = f"/images/{line['id']}/w600"
        first, second = (requests.get(url + path, headers={"Accept": BROWSERS["chrome"][0]}, timeout=60)
                         for _ in range(2))
        assert first.status_code == 200 and first.headers["Content-Type"] == "image/avif"
        assert images.size(first.content)[0] == 600
        assert (first.headers["X-Cache-Status"], second.headers["X-Cache-Status"]) == ("MISS", "HIT")
        # the origin listens on its own port, loopback only, behind the edge
        assert "X-Cache-Status" not in requests.get(f"http://127.0.0.1:{origin_port}{path}", timeout=60).headers
        # the development key printed at start signs URLs that point at the edge
        secrets = json.loads((tmp_path / "var" / "secrets.json").read_text())
        key = secrets["api_keys"].partition(":")[0]
        assert key in (tmp_path / "launcher.out").read_text()
        signed = requests.post(url + "/v1/sign", headers={"Authorization": f"Bearer {key}"},
                               json={"paths": [path], "expires_in": 60}, timeout=10)
        assert signed.status_code == 200 and signed.json()["urls"][0].startswith(url + path + "?k=k1&")
        # purges go to this edge by default
        assert requests.post(f"{url}/purge/images/{line['id']}", timeout=10).json()["removed"] >= 1
        assert (tmp_path / "var" / "edge" / "nginx.conf").exists()
    finally:
        shut_down(proc, tmp_path)
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/healthz", timeout=2)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{origin_port}/healthz", timeout=2)


def test_edge_off_runs_the_origin_alone(tmp_path):
    proc, url, env, origin_port = launch(tmp_path, IMAGEHOST_EDGE="0")
    try:
        resp = requests.get(url + "/images/nosuchimage/w300.webp", timeout=10)
        assert resp.status_code == 404 and "X-Cache-Status" not in resp.headers
        assert not (tmp_path / "var" / "edge").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=40)
