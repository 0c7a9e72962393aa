"""schemathesis against /openapi.json on a real gunicorn, for a bounded time: no input may produce a 5xx."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.servers import start_origin, stop
from tests.uploads import API_KEY, KEYS_ENV, REVIEWER_KEY, upload

SECONDS = 60


def run_schemathesis(url: str, key: str, seconds: int, report: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    return subprocess.run(
        [exe, "run", f"{url}/openapi.json", "--checks", "not_a_server_error", "--max-time", str(seconds),
         "--max-examples", "40", "--seed", "7", "--header", f"Authorization: Bearer {key}", "--workers", "1",
         "--no-color"],
        capture_output=True, text=True, timeout=seconds + 120,
    )


def test_no_request_makes_the_api_fail(tmp_path, clamd_socket):
    env = {**KEYS_ENV, "IMAGEHOST_CLAMD_SOCKET": str(clamd_socket), "IMAGEHOST_MODERATION": "fixed:0.1"}
    server = start_origin(tmp_path / "var", env)
    try:
        upload(server.url, b"\xff\xd8\xff" + b"\0" * 100)  # some state for the fuzzer to find
        for key in (API_KEY, REVIEWER_KEY):
            result = run_schemathesis(server.url, key, SECONDS // 2, tmp_path / "report")
            (tmp_path / f"schemathesis-{key}.log").write_text(result.stdout + result.stderr)
            assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        log = (server.data_dir / "gunicorn.log").read_text()
        assert "Traceback" not in log, log[-4000:]
    finally:
        stop(server.proc)
