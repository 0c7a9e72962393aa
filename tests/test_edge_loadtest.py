"""`loadtest/run_loadtest.py --smoke`: the edge under locust and wrk for ~30 s; behaviour only, not timings."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.servers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")]


def test_smoke_load_run_has_no_errors_and_hits_the_cache():
    out = subprocess.run([sys.executable, str(ROOT / "loadtest" / "run_loadtest.py"), "--smoke"], cwd=ROOT,
                         capture_output=True, text=True, timeout=240)
    assert out.stdout.strip(), out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    locust, wrk = summary["locust"], summary["wrk"]
    assert locust["failures"] == 0 and locust["requests"] > 500, locust["errors"]
    assert locust["hit_ratio"] >= 0.95, locust["cache_statuses"]
    names = locust["by_name"]
    assert names["hotlink (foreign Referer)"][0] > 0 and names["hotlink (unsigned)"][0] > 0  # all answered 403
    assert names["image (If-None-Match)"][0] > 0  # all answered 304
    assert wrk["checked"]["non2xx"] == wrk["plain"]["non2xx"] == 0
    assert set(wrk["cache_statuses"]) == {"HIT"}
