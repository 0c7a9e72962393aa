"""Fixtures for the production adapters' real backends: moto's S3 server, the local PostgreSQL.

    aws_credentials   dummy AWS credentials in os.environ (no real account is ever used)
    moto_server       `python -m moto.server` on a free loopback port; yields its URL
    s3_store          an S3Store on a fresh bucket of moto_server, with a key prefix
    postgres_url      a private schema in the test database; yields a URL that selects it
    catalog_url       a fresh, empty catalog database of each adapter (SQLite, PostgreSQL), as a URL

PostgreSQL comes from IMAGEHOST_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test). When it cannot be reached the tests
that need it fail, they do not skip: the adapter must be tested for real.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from tests.servers import ROOT, free_port, stop, wait_for

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # never read a developer's real profile or config
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}


@pytest.fixture(scope="session")
def aws_credentials():
    with pytest.MonkeyPatch.context() as mp:
        for name, value in AWS_ENV.items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        yield


@pytest.fixture(scope="session")
def moto_server(aws_credentials, tmp_path_factory):
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/moto-api/", timeout=30, proc=proc)
    except RuntimeError as exc:
        stop(proc)
        raise RuntimeError(f"moto server did not start: {exc}\n{log_path.read_text()[-3000:]}") from None
    yield url
    stop(proc)


@pytest.fixture
def s3_store(moto_server):
    from origin.ports.store_s3 import S3Store

    store = S3Store(f"test-{uuid.uuid4().hex[:16]}", prefix="tenant-a", endpoint_url=moto_server)
    store.client.create_bucket(Bucket=store.bucket)
    return store


def with_query(url: str, param: str) -> str:
    return url + ("&" if "?" in url else "?") + param


def postgres_base_url() -> str:
    return os.environ.get("IMAGEHOST_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@contextmanager
def private_schema(prefix: str = "t"):
    """A fresh schema of the test database, as a URL that selects it; dropped afterwards.
    PostgreSQL out of reach fails the test (never a skip)."""
    base = postgres_base_url()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(base, connect_timeout=3, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {base} (set IMAGEHOST_TEST_POSTGRES_URL to another server): {exc}",
            pytrace=False,
        )
    try:
        yield with_query(base, f"options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(base, connect_timeout=3, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="session")
def postgres_url():
    with private_schema() as url:
        yield url


def forget_index(url: str) -> None:
    """Close the process-wide hash index of a catalog URL (origin.wiring.hash_index_for) before its schema goes."""
    from origin import wiring

    index = wiring._indexes.pop(url, None)
    if index is not None:
        index.close()


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_url(request, tmp_path):
    """A fresh, empty catalog database of each adapter, as a URL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
        return
    with private_schema("t_cat") as url:
        yield url
        forget_index(url)


# --- clamd: the project's own clamd, as `make serve` runs it -----------------------------------
#
#     clamd_settings   Settings whose data_dir (a session temp dir) holds the test clamd
#     clamd_socket     ensure_clamd(clamd_settings): the socket path of a clamd that answers PING,
#                      loaded with origin/clamav's signatures only; stopped when the session ends
#
# clamd must be installed (Debian: clamav-daemon, in the Makefile's APT_PACKAGES); when it is
# missing or does not start, the tests that need it fail, they do not skip.

@pytest.fixture(scope="session")
def clamd_settings(tmp_path_factory):
    from origin.config import Settings

    return Settings(data_dir=tmp_path_factory.mktemp("clamd") / "var")


@pytest.fixture(scope="session")
def clamd_socket(clamd_settings):
    from origin.errors import Unavailable
    from origin.services.clamd import ensure_clamd, stop_clamd

    try:
        socket_path = ensure_clamd(clamd_settings)
    except Unavailable as exc:
        pytest.fail(f"the test clamd did not start: {exc.message}", pytrace=False)
    yield socket_path
    stop_clamd(clamd_settings)
