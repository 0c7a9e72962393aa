"""`python -m edge.run` (make serve) brings up origin + nginx on free ports; an ingested image comes out as AVIF."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests import images
from tests.servers import ROOT, free_port
from tests.test_edge_units import BROWSERS

pytestmark = pytest.mark.slow


def launch(tmp_path, name: str = "var", wait: bool = True, **extra):
    port = free_port()
    env = {**os.environ, "IMAGEHOST_PORT": str(port), "IMAGEHOST_DATA_DIR": str(tmp_path / name),
           "IMAGEHOST_WORKERS": "1", "IMAGEHOST_SCAN": "0", "IMAGEHOST_MODERATION": "off",
           "IMAGEHOST_WORKER_THREADS": "0", **extra}
    for var in ("IMAGEHOST_API_KEYS", "IMAGEHOST_SIGNING_KEYS", "IMAGEHOST_PURGE_URLS", "IMAGEHOST_BIND",
                "IMAGEHOST_CLAMD_SOCKET", "IMAGEHOST_ORIGIN_PORT", "IMAGEHOST_PUBLIC_BASE_URL"):
        if var not in extra:
            env.pop(var, None)
    out = open(tmp_path / f"{name}.out", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "edge.run"], env=env, cwd=ROOT, stdout=out,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    if wait:
        wait_ready(proc, tmp_path / f"{name}.out")
    return proc, url, env


def wait_ready(proc, out_path, timeout: float = 90):
    """The launcher says "ready" only once a request through its edge reached its own origin."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, out_path.read_text()
        if "imagehost: ready:" in out_path.read_text():
            return
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(out_path.read_text())


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def ingest(env, path) -> dict:
    result = subprocess.run([sys.executable, "-m", "origin.cli", "ingest", str(path)], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def shut_down(proc, tmp_path):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=40) == 0, (tmp_path / "var.out").read_text()


def test_launcher_serves_an_ingested_image_as_avif_through_the_edge(tmp_path):
    origin_port = free_port()  # optional: the origin also answers on a loopback port of its own
    proc, url, env = launch(tmp_path, IMAGEHOST_ORIGIN_PORT=str(origin_port))
    try:
        line = ingest(env, images.PHOTOS[1])
        assert line["url"] == f"{url}/images/{line['id']}/original"
        path = f"/images/{line['id']}/w600"
        first, second = (requests.get(url + path, headers={"Accept": BROWSERS["chrome"][0]}, timeout=60)
                         for _ in range(2))
        assert first.status_code == 200 and first.headers["Content-Type"] == "image/avif"
        assert images.size(first.content)[0] == 600
        assert (first.headers["X-Cache-Status"], second.headers["X-Cache-Status"]) == ("MISS", "HIT")
        assert "X-Cache-Status" not in requests.get(f"http://127.0.0.1:{origin_port}{path}", timeout=60).headers
        # the development key printed at start signs URLs that point at the edge
        secrets = json.loads((tmp_path / "var" / "secrets.json").read_text())
        key = secrets["api_keys"].partition(":")[0]
        assert key in (tmp_path / "var.out").read_text()
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


def test_two_instances_each_reach_only_their_own_origin(tmp_path):
    """Only IMAGEHOST_PORT differs: each edge talks to its origin over a socket in its own data dir."""
    first, first_url, first_env = launch(tmp_path, "one")
    second, second_url, _ = launch(tmp_path, "two")
    try:
        line = ingest(first_env, images.PHOTOS[0])
        assert requests.get(f"{first_url}/images/{line['id']}/w300.webp", timeout=60).status_code == 200
        assert requests.get(f"{second_url}/images/{line['id']}/w300.webp", timeout=60).status_code == 404
        assert (tmp_path / "one" / "run" / "origin.sock").is_socket()
    finally:
        for proc in (first, second):
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=40)


def test_a_second_launcher_on_one_data_dir_refuses_to_start(tmp_path):
    proc, url, env = launch(tmp_path)
    try:
        again = subprocess.run([sys.executable, "-m", "edge.run"], env={**env, "IMAGEHOST_PORT": str(free_port())},
                               cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert again.returncode == 1 and "another imagehost" in again.stderr, again.stderr
        assert requests.get(url + "/healthz", timeout=10).status_code == 200  # the first one is untouched
    finally:
        shut_down(proc, tmp_path)


def test_the_edge_outlives_its_origin_and_the_origin_comes_back(tmp_path):
    proc, url, env = launch(tmp_path)
    try:
        line = ingest(env, images.PHOTOS[0])
        cached = f"{url}/images/{line['id']}/w300.webp"
        assert requests.get(cached, timeout=60).status_code == 200  # now in the edge cache
        (origin,) = [pid for pid in children_of(proc.pid) if "origin.cli" in command_of(pid)
                     or "gunicorn" in command_of(pid)]
        os.kill(origin, signal.SIGKILL)
        for pid in children_of(origin):  # its workers go with it, as they would with the machine
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # while the origin is down, the cache still answers
            hit = requests.get(cached, timeout=10)
            assert hit.status_code == 200 and hit.headers["X-Cache-Status"] in ("HIT", "STALE"), hit.text
            time.sleep(0.2)
        assert proc.poll() is None
        deadline = time.monotonic() + 90  # and the launcher brings the origin back
        while time.monotonic() < deadline:
            fresh = requests.get(f"{url}/images/{line['id']}/w150.webp", timeout=60)
            if fresh.status_code == 200:
                break
            assert fresh.status_code == 503 and fresh.json()["error"] == "origin_unavailable", fresh.text
            time.sleep(0.5)
        assert fresh.status_code == 200 and fresh.headers["X-Cache-Status"] == "MISS"
        assert "origin exited" in (tmp_path / "var.out").read_text()
    finally:
        shut_down(proc, tmp_path)


def test_stopping_the_launcher_stops_the_clamd_it_started(tmp_path):
    proc, url, env = launch(tmp_path, IMAGEHOST_SCAN="1")
    try:
        pid = int((tmp_path / "var" / "clamd" / "clamd.pid").read_text())
        assert alive(pid) and "clamd" in command_of(pid)
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=60) == 0, (tmp_path / "var.out").read_text()
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid)
    assert "clamd stopped" in (tmp_path / "var.out").read_text()


def test_imagehost_stop_stops_a_running_launcher(tmp_path):
    proc, url, env = launch(tmp_path)
    result = subprocess.run([sys.executable, "-m", "origin.cli", "stop"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0 and "launcher" in result.stdout, result.stdout + result.stderr
    assert proc.wait(timeout=30) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/healthz", timeout=2)


def test_edge_off_runs_the_origin_alone(tmp_path):
    proc, url, env = launch(tmp_path, IMAGEHOST_EDGE="0")
    try:
        resp = requests.get(url + "/images/nosuchimage/w300.webp", timeout=10)
        assert resp.status_code == 404 and "X-Cache-Status" not in resp.headers
        assert not (tmp_path / "var" / "edge").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=40)
