"""A host for the lifecycle tests: the worker's real steps make images (eager thumbnails and all),
the real delivery renders and reads variants, `imagehost lifecycle` runs in-process or as a command."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache

import pyvips
from prometheus_client import CollectorRegistry

from origin import keys
from origin.config import Settings
from origin.ingest.worker import Pipeline
from origin.lifecycle.run import Lifecycle, run
from origin.metrics import build_metrics
from origin.pipeline.request import parse
from origin.pipeline.variants import Delivery
from origin.ports.moderation import OffModerator
from origin.ports.scanner import ScanOff
from origin.wiring import hash_index_for, open_catalog, open_store
from tests import images
from tests.servers import ROOT
from tests.uploads import worker_upload

NATURE = sorted((images.PHOTO_DIR / "nature").glob("*.jpg"))


@lru_cache(maxsize=None)
def photo(n: int, width: int = 900) -> bytes:
    """Real photos (Debian's mate-backgrounds), made smaller so a test renders them in milliseconds."""
    return pyvips.Image.thumbnail(str(NATURE[n % len(NATURE)]), width).jpegsave_buffer(Q=90)


def sample(name: str, value) -> float:
    return value.registry.get_sample_value(name) or 0.0


@dataclass
class Host:
    settings: Settings
    store: object
    catalog: object
    pipe: Pipeline
    metrics: object
    delivery: Delivery

    def upload(self, data: bytes, owner: str = "alice") -> str:
        image_id = worker_upload(self.pipe, data, owner)
        assert self.catalog.get(image_id).state == "ready"
        return image_id

    def get(self, image_id: str, name: str, accept: str | None = None):
        request = parse(image_id, name, self.settings.widths, self.settings.thumb_sizes, self.settings.named_presets)
        return self.delivery.variant(request, accept)

    def content(self, image_id: str) -> str:
        return self.catalog.get(image_id).content

    def objects(self, image_id: str) -> dict:
        """{name: StoredObject} of the image's content folder."""
        return {obj.key.rpartition("/")[2]: obj for obj in self.store.objects(keys.prefix(self.content(image_id)))}

    def flush(self) -> None:
        self.delivery.store.usage.flush()

    def renders(self) -> float:
        return sum(s.value for m in self.metrics.renders.collect() for s in m.samples if s.name.endswith("_total"))

    def lifecycle(self, now: float, **overrides) -> object:
        ctx = Lifecycle.from_settings(self.settings, self.store, self.catalog, self.metrics)
        if overrides:
            from dataclasses import replace

            ctx = replace(ctx, **overrides)
        return run(ctx, now=now)

    def command(self, *args: str, **env) -> subprocess.CompletedProcess:
        """An `imagehost` command in a process of its own, with this host's settings."""
        mine = {name: getattr(self.settings, name) for name in (
            "data_dir", "catalog_url", "variant_budget", "lifecycle_min_bytes", "access_flush_seconds")}
        environ = {**os.environ, **{f"IMAGEHOST_{k.upper()}": str(v) for k, v in mine.items()},
                   **{f"IMAGEHOST_{k.upper()}": str(v) for k, v in env.items()}}
        environ["PROMETHEUS_MULTIPROC_DIR"] = str(self.settings.data_dir / "metrics")
        return subprocess.run([sys.executable, "-m", "origin.cli", *args], env=environ, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)


def make_host(tmp_path, catalog_url: str = "", **overrides) -> Host:
    options = dict(data_dir=tmp_path / "var", catalog_url=catalog_url or f"sqlite:///{tmp_path}/catalog.sqlite3",
                   scan=False, moderation="off", record_cache_seconds=0.3, worker_threads=0,
                   access_flush_seconds=3600, thumb_sizes=(64,), dedup_perceptual=False)
    settings = Settings(**{**options, **overrides})
    store = open_store(settings)
    catalog = open_catalog(settings.catalog)
    metrics = build_metrics(CollectorRegistry())
    pipe = Pipeline(settings, store, catalog, None, ScanOff(), OffModerator(), metrics,
                    hash_index_for(settings.catalog))
    return Host(settings, store, catalog, pipe, metrics, Delivery(store, catalog, settings, metrics))
