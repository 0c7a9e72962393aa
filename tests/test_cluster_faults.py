"""The fleet shape (edge/cluster.py: nginx → two origins → a private PostgreSQL, S3 and SQS on moto,
two `imagehost worker`s, clamd) with one part failing at a time. Reads keep being served, the
upload API answers 503 with Retry-After when it cannot accept, and nothing accepted is lost.
loadtest/faults.py is the long version, under load, with figures."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from edge.cluster import Cluster
from edge.render import FAIL_TIMEOUT
from tests import images

pytestmark = pytest.mark.slow
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    made = Cluster(tmp_path_factory.mktemp("cluster"), moderation="fixed:0.1",
                   extra_env={"IMAGEHOST_JOB_LEASE_SECONDS": "4", "IMAGEHOST_RECORD_CACHE_SECONDS": "0.5"}).start()
    made.photos = [line["id"] for line in made.ingest(*images.PHOTOS)]
    yield made
    made.stop()


def auth(cluster) -> dict:
    return {"Authorization": f"Bearer {cluster.api_key}"}


def read(cluster, path: str, **headers) -> requests.Response:
    return requests.get(cluster.edge_url + path, headers=headers, timeout=60)


def offer(cluster, data: bytes) -> tuple[str, requests.Response]:
    """Ask for an upload URL and POST the bytes to S3: (id, S3's answer)."""
    target = requests.post(f"{cluster.edge_url}/v1/uploads", json={"content_type": "image/jpeg"},
                           headers=auth(cluster), timeout=30)
    assert target.status_code == 201, target.text
    answer = target.json()
    sent = requests.post(answer["url"], data=answer["fields"], files={"file": ("upload", data, "image/jpeg")},
                         timeout=30)
    return answer["id"], sent


def state_of(cluster, image_id: str) -> str:
    answer = requests.get(f"{cluster.edge_url}/v1/images/{image_id}", headers=auth(cluster), timeout=30)
    return answer.json()["state"] if answer.status_code == 200 else f"http {answer.status_code}"


def wait_rest(cluster, image_id: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = state_of(cluster, image_id)
        if state in ("ready", "quarantined", "held"):
            return state
        time.sleep(0.3)
    raise AssertionError(f"{image_id} is still {state_of(cluster, image_id)}")


def photo(seed: int) -> bytes:
    return images.jpeg(images.scene(800 + seed, 600))


def test_an_upload_travels_the_fleet(cluster):
    image_id, sent = offer(cluster, photo(1))
    assert sent.status_code == 204
    assert wait_rest(cluster, image_id) == "ready"
    served = read(cluster, f"/images/{image_id}/w300", Accept=CHROME)
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/avif"


def test_one_origin_killed_the_other_serves(cluster):
    cluster.kill("origin-1")
    try:
        for n, image_id in enumerate(cluster.photos):
            for variant in ("w150.webp", "w600.jpeg", "sq64.avif", "original"):  # misses and hits
                assert read(cluster, f"/images/{image_id}/{variant}").status_code == 200
        image_id, sent = offer(cluster, photo(2))
        assert sent.status_code == 204 and wait_rest(cluster, image_id) == "ready"
    finally:
        cluster.start_service("origin-1")


def test_postgres_stopped_reads_go_on_and_uploads_wait(cluster):
    accepted, sent = offer(cluster, photo(3))  # accepted just before the outage
    assert sent.status_code == 204
    cluster.stop_service("postgres")
    try:
        for image_id in cluster.photos:
            for variant in ("w300.webp", "w1200.jpeg", "sm150.webp"):  # never rendered before: misses
                answer = read(cluster, f"/images/{image_id}/{variant}")
                assert answer.status_code == 200, answer.text
        refused = requests.post(f"{cluster.edge_url}/v1/uploads", json={"content_type": "image/jpeg"},
                                headers=auth(cluster), timeout=30)
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0, refused.text
        assert refused.json()["error"] == "catalog_unavailable"
    finally:
        cluster.start_service("postgres")
    assert wait_rest(cluster, accepted) == "ready"  # nothing accepted was lost


def test_s3_out_of_reach_cached_reads_go_on_and_nothing_is_lost(cluster):
    warm = [f"/images/{image_id}/w600.webp" for image_id in cluster.photos]
    for path in warm:
        assert read(cluster, path).status_code == 200
    accepted, sent = offer(cluster, photo(4))
    assert sent.status_code == 204
    cluster.cut_s3()
    try:
        for path in warm:  # the edge cache
            assert read(cluster, path).status_code == 200
        for image_id in cluster.photos:  # misses whose source an origin keeps locally
            answer = read(cluster, f"/images/{image_id}/w150.jpeg")
            assert answer.status_code in (200, 503), answer.text
            assert answer.status_code == 200 or answer.json()["error"] == "store_unavailable"
        with pytest.raises(requests.ConnectionError):
            offer(cluster, photo(5))  # the bucket cannot take it: the client knows it was not accepted
    finally:
        cluster.restore_s3()
    assert wait_rest(cluster, accepted) == "ready"


def test_a_worker_killed_mid_job_leaves_it_to_the_next(cluster):
    cluster.stop_service("worker-2")
    try:
        image_id, sent = offer(cluster, images.big_jpeg(8))
        assert sent.status_code == 204
        deadline = time.monotonic() + 30
        while state_of(cluster, image_id) not in ("validating", "moderating", "processing"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        cluster.kill("worker-1")  # mid-job: the message goes back to the queue after the lease
    finally:
        cluster.start_service("worker-2")
        cluster.start_service("worker-1")
    assert wait_rest(cluster, image_id) == "ready"


def test_clamd_stopped_the_scan_waits_never_skipped(cluster):
    cluster.stop_clamd()
    try:
        clean, sent = offer(cluster, photo(6))
        assert sent.status_code == 204
        bad, sent = offer(cluster, images.jpeg(images.scene(640, 480))[:-2] + EICAR + b"\xff\xd9")
        assert sent.status_code == 204
        time.sleep(3)
        assert state_of(cluster, clean) == "validating" and state_of(cluster, bad) == "validating"
    finally:
        cluster.start_clamd()
    assert wait_rest(cluster, clean) == "ready"
    assert wait_rest(cluster, bad) == "quarantined"


def test_a_rolling_restart_answers_no_5xx(cluster):
    paths = [f"/images/{i}/{v}" for i in cluster.photos for v in ("w150.webp", "w300.avif", "sq150.webp")]
    statuses: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def load():
        n = 0
        while not stop.is_set():
            for answer in (read(cluster, paths[n % len(paths)] + ("" if n % 3 else f"?n={n}")),
                           requests.get(f"{cluster.edge_url}/v1/images", headers=auth(cluster), timeout=60)):
                statuses.append(answer.status_code)
                if answer.status_code >= 500:
                    failures.append(f"{answer.url} {answer.status_code} {answer.text[:200]}")
            n += 1

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for name in ("origin-1", "origin-2"):  # a deploy: one at a time, graceful
            cluster.stop_service(name)
            cluster.start_service(name)
            time.sleep(FAIL_TIMEOUT + 0.5)  # until the edge takes it back into the group
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(statuses) > 20 and not failures, failures[:5]
