"""Faults and the production path: S3 presigned POST → S3 event → SQS → `imagehost worker` (moto over HTTP),
a worker killed mid-job, clamd stopped. Nothing accepted may be lost or half-public."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest
import requests

from origin.config import Settings
from origin.services.clamd import ensure_clamd, stop_clamd
from tests import images
from tests.servers import ROOT, start_origin, stop
from tests.uploads import KEYS_ENV, request_upload, send_bytes, status, upload, wait_state


def start_worker(env: dict, log_path) -> subprocess.Popen:
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "origin.cli", "worker"], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT)


def wait_for_state(base, image_id, wanted, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if status(base, image_id)["state"] == wanted:
            return
        time.sleep(0.05)
    raise AssertionError(f"{image_id} never reached {wanted}: {status(base, image_id)}")


def s3_setup(moto_server, clamd_socket, data_dir) -> dict:
    """A fresh bucket and queue (`imagehost setup`), and the environment that uses them."""
    bucket = "ih-" + secrets.token_hex(4)
    env = {
        **os.environ, **KEYS_ENV,
        "IMAGEHOST_STORE": "s3", "IMAGEHOST_S3_BUCKET": bucket, "IMAGEHOST_S3_PREFIX": "site",
        "IMAGEHOST_S3_ENDPOINT_URL": moto_server, "IMAGEHOST_QUEUE": "sqs",
        "IMAGEHOST_CLAMD_SOCKET": str(clamd_socket), "IMAGEHOST_MODERATION": "fixed:0.1",
        "IMAGEHOST_JOB_LEASE_SECONDS": "3",
        "IMAGEHOST_DATA_DIR": str(data_dir),
    }
    done = subprocess.run([sys.executable, "-m", "origin.cli", "setup"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    env["IMAGEHOST_SQS_QUEUE_URL"] = json.loads(done.stdout)["queue_url"]
    return env


@pytest.fixture(scope="module")
def s3_env(moto_server, clamd_socket, tmp_path_factory):
    return s3_setup(moto_server, clamd_socket, tmp_path_factory.mktemp("s3") / "var")


@pytest.fixture(scope="module")
def s3_host(s3_env, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("s3origin") / "var"
    server = start_origin(data_dir, {k: v for k, v in s3_env.items() if k.startswith(("IMAGEHOST_", "AWS_"))})
    worker = start_worker(s3_env, data_dir / "worker.log")
    yield server
    for proc in (worker, server.proc):
        stop(proc)


def test_presigned_post_straight_to_the_bucket(s3_host, s3_env):
    target = request_upload(s3_host.url, filename="photo.jpg", content_type="image/jpeg")
    assert target["method"] == "POST" and target["url"].startswith(s3_env["IMAGEHOST_S3_ENDPOINT_URL"])
    policy = json.loads(__import__("base64").b64decode(target["fields"]["policy"]))
    conditions = json.dumps(policy["conditions"])
    assert "content-length-range" in conditions and f"site/uploads/{target['id']}" in conditions
    photo = images.jpeg(images.scene(1200, 800))
    assert send_bytes(target, photo).status_code in (200, 204)
    info = wait_state(s3_host.url, target["id"])
    assert info["state"] == "ready", info
    resp = requests.get(info["urls"]["widths"]["w600"], headers={"Accept": "image/webp"}, timeout=30)
    assert resp.headers["Content-Type"] == "image/webp" and images.size(resp.content) == (600, 400)


def test_size_is_enforced_by_the_worker_when_the_bucket_does_not(s3_host):
    # moto ignores content-length-range, as some S3-compatible stores do: the worker checks again
    target = request_upload(s3_host.url, content_type="image/jpeg")
    assert send_bytes(target, images.jpeg() + b"\0" * (21 * 1024 * 1024)).status_code in (200, 204)
    info = wait_state(s3_host.url, target["id"])
    assert info["state"] == "quarantined" and info["reason"] == "too_large"


def test_worker_killed_mid_job_on_sqs(moto_server, clamd_socket, tmp_path):
    s3_env = s3_setup(moto_server, clamd_socket, tmp_path / "worker-var")  # a queue no other worker reads
    env = {**s3_env, "IMAGEHOST_MODERATION": "fixed:0.1:30"}  # the first worker sits inside moderation
    server = start_origin(tmp_path / "var", {k: v for k, v in env.items() if k.startswith(("IMAGEHOST_", "AWS_"))})
    slow = start_worker(env, tmp_path / "slow.log")
    try:
        target = upload(server.url, images.jpeg(), content_type="image/jpeg")
        wait_for_state(server.url, target["id"], "moderating")
        slow.send_signal(signal.SIGKILL)
        slow.wait()
        fast = start_worker({**s3_env}, tmp_path / "fast.log")
        try:
            info = wait_state(server.url, target["id"], timeout=60)
            assert info["state"] == "ready"
        finally:
            stop(fast)
    finally:
        stop(server.proc)


def test_worker_killed_mid_job_on_the_local_queue(clamd_socket, tmp_path):
    env = {**KEYS_ENV, "IMAGEHOST_CLAMD_SOCKET": str(clamd_socket), "IMAGEHOST_WORKER_THREADS": "0",
           "IMAGEHOST_JOB_LEASE_SECONDS": "3"}
    server = start_origin(tmp_path / "var", env)
    worker_env = {**server.env, "IMAGEHOST_WORKER_THREADS": "1"}
    slow = start_worker({**worker_env, "IMAGEHOST_MODERATION": "fixed:0.1:30"}, tmp_path / "slow.log")
    try:
        target = upload(server.url, images.jpeg(), content_type="image/jpeg")
        wait_for_state(server.url, target["id"], "moderating")
        slow.send_signal(signal.SIGKILL)
        slow.wait()
        fast = start_worker({**worker_env, "IMAGEHOST_MODERATION": "fixed:0.1"}, tmp_path / "fast.log")
        try:
            assert wait_state(server.url, target["id"], timeout=60)["state"] == "ready"
        finally:
            stop(fast)
    finally:
        stop(server.proc)


def test_clamd_stopped_means_wait_not_skip(tmp_path):
    clamd = Settings(data_dir=tmp_path / "clamd-home")
    sock = ensure_clamd(clamd)
    env = {**KEYS_ENV, "IMAGEHOST_CLAMD_SOCKET": str(sock), "IMAGEHOST_MODERATION": "fixed:0.1"}
    server = start_origin(tmp_path / "var", env)
    try:
        stop_clamd(clamd)
        target = upload(server.url, images.jpeg(), content_type="image/jpeg")
        time.sleep(4)
        info = status(server.url, target["id"])
        assert info["state"] == "validating", info  # waiting for the scan, never past it
        assert requests.get(f"{server.url}/images/{target['id']}/w150.webp", timeout=10).status_code == 404
        ensure_clamd(clamd)
        assert wait_state(server.url, target["id"], timeout=60)["state"] == "ready"
    finally:
        stop(server.proc)
        stop_clamd(clamd)


def test_the_queue_is_found_by_name_when_no_url_is_given(moto_server, clamd_socket, tmp_path):
    """deploy/docker-compose.yml gives no queue URL: `imagehost setup` made the queue, workers find it."""
    from origin.ports.queue_sqs import SqsQueue

    s3_env = s3_setup(moto_server, clamd_socket, tmp_path / "var")  # a queue no other worker reads
    env = {k: v for k, v in s3_env.items() if k.startswith("IMAGEHOST_") and k != "IMAGEHOST_SQS_QUEUE_URL"}
    queue = SqsQueue.from_settings(Settings.from_env(env))
    queue.send("Found1ByName")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        jobs = queue.receive(1)
        if jobs:
            break
    assert [job.image_id for job in jobs] == ["Found1ByName"]
    assert queue.queue_url == s3_env["IMAGEHOST_SQS_QUEUE_URL"]
    queue.ack(jobs[0])
