"""deploy/docker-compose.yml, checked as far as this machine allows (no Docker engine runs here):
the production shape is there and matches `make cluster`, every setting it passes exists in
origin/config.py and validates, the images it builds exist in the Dockerfile, the files it mounts
exist, and the edge it runs renders an nginx configuration that the real nginx accepts."""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import fields

import pytest
import yaml

from edge.cluster import Cluster
from edge.render import nginx_command
from origin.config import Settings
from tests.servers import ROOT

COMPOSE = ROOT / "deploy" / "docker-compose.yml"
SAMPLE = {"IMAGEHOST_API_KEYS": "key:owner", "IMAGEHOST_REVIEWER_KEYS": "rev:rita",
          "IMAGEHOST_SIGNING_KEYS": "k1:secret", "IMAGEHOST_WEBHOOK_SECRET": "hook", "POSTGRES_PASSWORD": "pw"}
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?])?([^}]*)\}")


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} / ${VAR-default} / ${VAR:?error}, with SAMPLE as the environment."""
    def one(match):
        name, op, arg = match.groups()
        if name in SAMPLE:
            return SAMPLE[name]
        return arg if op in (":-", "-") else ""
    return VARIABLE.sub(one, str(value))


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


def environment(service: dict) -> dict:
    return {k: interpolate(v) for k, v in (service.get("environment") or {}).items()}


def test_the_production_shape_is_there_and_matches_make_cluster(compose):
    services = compose["services"]
    origins = sorted(n for n in services if n.startswith("origin-"))
    workers = sorted(n for n in services if n.startswith("worker-"))
    local = Cluster.__dataclass_fields__
    assert (len(origins), len(workers)) == (local["origins"].default, local["workers"].default) == (2, 2)
    assert {"edge", "postgres", "clamd", "setup", "s3"} <= set(services)
    edge_command = services["edge"]["command"]
    upstream = edge_command[edge_command.index("--origins") + 1].split(",")
    assert upstream == [f"{name}:{environment(services[name])['IMAGEHOST_PORT']}" for name in origins]
    for name in origins:
        assert services[name]["command"] == ["serve"]
        assert environment(services[name])["IMAGEHOST_WORKER_THREADS"] == "0"  # web origins run no jobs
    for name in workers:
        assert services[name]["command"] == ["worker"]
        assert int(environment(services[name])["IMAGEHOST_WORKER_THREADS"]) > 0
    for name in origins + workers:
        env = environment(services[name])
        assert (env["IMAGEHOST_STORE"], env["IMAGEHOST_QUEUE"]) == ("s3", "sqs")
        assert env["IMAGEHOST_CATALOG_URL"].startswith("postgresql://") and "@postgres:5432/" in env["IMAGEHOST_CATALOG_URL"]
        assert env["IMAGEHOST_CLAMD_SOCKET"] == "clamd:3310"
        assert env["IMAGEHOST_PURGE_URLS"] == "http://edge:8080"


def test_every_setting_exists_and_validates(compose):
    known = {"IMAGEHOST_" + f.name.upper() for f in fields(Settings)}
    for name, service in compose["services"].items():
        env = environment(service)
        unknown = {k for k in env if k.startswith("IMAGEHOST_")} - known
        assert not unknown, (name, unknown)
        if any(k.startswith("IMAGEHOST_") for k in env):
            Settings.from_env(env)  # a ConfigError fails the test


def test_built_targets_and_mounted_files_exist(compose):
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "Dockerfile").read_text(), re.M))
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            assert build["target"] in stages, name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(".."):
                assert (COMPOSE.parent / source).resolve().is_file(), (name, source)


def test_the_edge_it_runs_renders_a_configuration_nginx_accepts(compose, tmp_path):
    command = compose["services"]["edge"]["command"]
    args = [a if a != "/var/cache/imagehost-edge" else str(tmp_path / "edge") for a in command if a != "--exec"]
    env = {**environment(compose["services"]["edge"]), "PATH": "/usr/sbin:/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "edge.render", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    conf = tmp_path / "edge" / "nginx.conf"
    text = conf.read_text()
    assert "server origin-1:8080 max_fails=1" in text and "server origin-2:8080 max_fails=1" in text
    # nginx resolves upstream names when it loads: here they are made to resolve to loopback
    (tmp_path / "edge" / "nginx.conf").write_text(text.replace("origin-1:8080", "127.0.0.1:8080")
                                                   .replace("origin-2:8080", "127.0.0.1:8081"))
    check = subprocess.run(nginx_command(conf, test=True), capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
