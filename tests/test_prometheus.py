"""Alerts and dashboards, tested: promtool checks and unit-tests the rules; a real Prometheus
(Debian's `prometheus`) scrapes a running origin on loopback and every series the rules use is
there with the labels they select on; every metric a Grafana panel queries is in /metrics.

promtool and prometheus come from the Makefile's TEST_PACKAGES; missing, these tests fail."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests import images
from tests.servers import ROOT, free_port, start_origin, stop
from tests.uploads import KEYS_ENV, send_bytes, request_upload, upload, wait_state

pytestmark = pytest.mark.slow
RULES_DIR = ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "imagehost.rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "imagehost.json"
SELECTOR = re.compile(r"\b(imagehost_[a-z0-9_]+)(?:\{([^}]*)\})?")


def tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (Debian: prometheus, in the Makefile's TEST_PACKAGES)", pytrace=False)
    return found


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def panel_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names it matches on) for every imagehost_* selector in a PromQL expression."""
    found = []
    for name, matchers in SELECTOR.findall(expr):
        labels = {m.split("=")[0].rstrip("!~").strip() for m in matchers.split(",") if "=" in m}
        found.append((name, labels))
    return found


def test_promtool_checks_the_rules_and_the_config():
    result = subprocess.run([tool("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 13 rules found" in result.stdout
    config = subprocess.run([tool("promtool"), "check", "config", str(RULES_DIR / "prometheus.yml")],
                            capture_output=True, text=True)
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_unit_tests_of_every_alert():
    result = subprocess.run([tool("promtool"), "test", "rules", "imagehost.rules.test.yml"], cwd=RULES_DIR,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", (RULES_DIR / "imagehost.rules.test.yml").read_text()))
    alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
              if "alert" in rule}
    assert alerts == tested  # every alert has a test that sees it fire (or stay quiet)


@pytest.fixture(scope="module")
def busy_origin(tmp_path_factory):
    """An origin that has done a bit of everything the rules and panels look at: uploads that end
    ready and quarantined, a duplicate, renders, a 404, a bad request."""
    env = {**KEYS_ENV, "IMAGEHOST_SCAN": "0", "IMAGEHOST_MODERATION": "fixed:0.1"}
    server = start_origin(tmp_path_factory.mktemp("prom") / "var", env, workers=2)
    try:
        photo = images.jpeg(images.scene(640, 400))
        ready = upload(server.url, photo, filename="a.jpg")
        bad = request_upload(server.url, filename="b.jpg", content_type="image/jpeg")
        send_bytes(bad, b"<html>not a picture</html>")
        assert wait_state(server.url, ready["id"])["state"] == "ready"
        again = upload(server.url, photo, filename="a-again.jpg")  # an exact duplicate
        assert wait_state(server.url, again["id"])["state"] == "ready"
        assert wait_state(server.url, bad["id"])["state"] == "quarantined"
        for path in (f"/images/{ready['id']}/w300.webp", f"/images/{ready['id']}/w600.avif", "/images/nope1234567/w300",
                     f"/images/{ready['id']}/w301.webp"):
            requests.get(server.url + path, timeout=60)
        yield server
    finally:
        stop(server.proc)


def test_every_metric_a_dashboard_panel_queries_exists(busy_origin):
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(busy_origin.url + "/metrics", timeout=30).text
    samples = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    exprs = panel_exprs()
    assert len(exprs) >= 20
    missing = [(title, name) for title, expr in exprs for name, _ in selectors(expr) if name not in samples]
    assert not missing, missing
    titles = " ".join(title for title, _ in exprs).lower()
    for topic in ("requests", "hit ratio", "renders by format", "render latency", "queue", "moderation", "storage"):
        assert topic in titles


def test_a_real_prometheus_scrapes_the_origin_and_finds_every_series_the_rules_use(busy_origin, tmp_path):
    port = free_port()
    target = busy_origin.url.removeprefix("http://")
    config = yaml.safe_load((RULES_DIR / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(RULES)]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen([tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                             "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        assert wait(lambda: _query(api, 'up{job="imagehost-origin"}') == ["1"], 60), \
            (tmp_path / "prometheus.log").read_text()[-2000:]
        used = [s for expr in rule_exprs() for s in selectors(expr)]
        assert {name for name, _ in used} >= {"imagehost_http_requests_total", "imagehost_render_seconds_bucket",
                                              "imagehost_queue_pending_jobs", "imagehost_queue_oldest_job_age_seconds",
                                              "imagehost_images", "imagehost_images_resting_total",
                                              "imagehost_backend_up", "imagehost_purge_pending"}
        for name, labels in used:
            series = requests.get(f"{api}/series", params={"match[]": name}, timeout=10).json()["data"]
            assert series, f"{name}: no such series in Prometheus"
            for label in labels:
                assert any(label in s for s in series), f"{name} has no {label!r} label"
        values = {s["metric"]["backend"]: s["value"][1]
                  for s in requests.get(f"{api}/query", params={"query": "imagehost_backend_up"}, timeout=10)
                  .json()["data"]["result"]}
        assert values == {"store": "1", "catalog": "1"}
        assert _query(api, 'imagehost_images{state="quarantined"}') == ["1"]
        assert _query(api, 'sum(imagehost_images_resting_total{state="quarantined",reason="unsupported_type"})') == ["1"]
        # every rule evaluates without error against the real series, and the recording rules record
        assert wait(lambda: _rules_evaluated(api), 30)
        assert wait(lambda: _query(api, "imagehost:http_5xx_ratio:rate5m") == ["0"], 30)  # no 5xx: 0, not absent
        assert wait(lambda: _query(api, "imagehost:render_seconds:p99_5m") != [], 30)
        assert wait(lambda: _query(api, "imagehost:quarantined_share:rate15m") != [], 30)
    finally:
        stop(proc)


def _query(api: str, promql: str) -> list[str]:
    answer = requests.get(f"{api}/query", params={"query": promql}, timeout=10).json()
    return [r["value"][1] for r in answer["data"]["result"]]


def _rules_evaluated(api: str) -> bool:
    groups = requests.get(f"{api}/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    if len(rules) != 13 or any(rule.get("lastEvaluation", "").startswith("0001") for rule in rules):
        return False
    bad = [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"]
    assert not bad, bad
    return True


def wait(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except (requests.RequestException, KeyError, ValueError):
            pass
        time.sleep(0.5)
    return False


def test_the_rules_files_are_where_the_readme_says():
    assert Path(RULES_DIR / "imagehost.rules.test.yml").is_file() and DASHBOARD.is_file()
