"""Where the moderation model lives: once in each process that runs jobs (gunicorn workers with
pipeline threads, `imagehost worker`), never in web workers that run none (IMAGEHOST_WORKER_THREADS=0,
or IMAGEHOST_QUEUE=sqs, where `imagehost worker` processes take the jobs). Seen from outside, in
each gunicorn worker's memory map: onnxruntime's library is mapped, or it is not."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.servers import start_origin, stop
from tests.uploads import KEYS_ENV

pytestmark = pytest.mark.slow


def workers_of(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def wait(check, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def has_model_runtime(pid: int) -> bool:
    return "onnxruntime" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize("env, loaded", [
    ({"IMAGEHOST_WORKER_THREADS": "2"}, True),
    ({"IMAGEHOST_WORKER_THREADS": "0"}, False),
    ({"IMAGEHOST_QUEUE": "sqs", "IMAGEHOST_SQS_QUEUE_URL": "http://127.0.0.1:9/000000000000/none",
      "IMAGEHOST_STORE": "s3", "IMAGEHOST_S3_ENDPOINT_URL": "http://127.0.0.1:9"}, False),
], ids=["pipeline-threads", "web-only", "sqs-web-only"])
def test_the_model_is_loaded_only_where_jobs_run(tmp_path, env, loaded):
    base = {**KEYS_ENV, "IMAGEHOST_SCAN": "0", "IMAGEHOST_MODERATION": "open_nsfw"}
    server = start_origin(tmp_path / "var", {**base, **env}, workers=2)
    try:
        pids = workers_of(server.proc.pid)
        assert len(pids) == 2
        # a worker loads libvips first, the model (if at all) at the end of its boot
        assert wait(lambda: all("libvips" in Path(f"/proc/{pid}/maps").read_text() for pid in pids))
        if loaded:
            assert wait(lambda: all(has_model_runtime(pid) for pid in pids))
        else:
            time.sleep(3)  # long past the moment a worker with pipeline threads has its model
            assert not any(has_model_runtime(pid) for pid in pids)
        assert not has_model_runtime(server.proc.pid)  # the master forks before any model is loaded
    finally:
        stop(server.proc)
