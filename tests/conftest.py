import pytest
from prometheus_client import CollectorRegistry

from origin.config import Settings
from origin.metrics import build_metrics

pytest_plugins = ["tests.servers", "tests.backends"]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "var")


@pytest.fixture
def metrics():
    return build_metrics(CollectorRegistry())
