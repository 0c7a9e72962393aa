"""What the operators' commands share: the settings as a running origin sees them, the owner
imports go to by default, the edges a deletion purges, the pipeline."""
from __future__ import annotations

from dataclasses import replace

from origin.config import ConfigError, Settings
from origin.security import dev_secrets
from origin.security.apikeys import ApiKeys


def settings_for_admin(settings: Settings) -> Settings:
    """Secrets from the data dir (as `make serve` generated them), and the local edge as the
    purge target when `make serve`'s launcher runs on this data dir and none is configured."""
    settings, _ = dev_secrets.ensure(settings)
    if not settings.purge_urls and settings.edge and (settings.run_dir / "launcher.pid").exists():
        settings = replace(settings, purge_urls=f"http://127.0.0.1:{settings.port}")
    return settings


def default_owner(settings: Settings) -> str:
    """The first API key's owner: the development key's under `make serve`, so the gallery shows them."""
    owners = ApiKeys.from_settings(settings).owners
    if not owners:
        raise ConfigError("no owner: pass --owner NAME or set IMAGEHOST_API_KEYS (key:owner,…)")
    return owners[0][1]


def pipeline(settings: Settings, *, scan: bool, moderate: bool, metrics=None):
    """The worker's pipeline in this process; the scanner and the model only when asked for."""
    from origin.ingest.worker import Pipeline
    from origin.ports.moderation import OffModerator
    from origin.ports.scanner import ScanOff
    from origin.wiring import hash_index_for, open_catalog, open_moderator, open_queue, open_scanner, open_store

    catalog = open_catalog(settings.catalog)
    scanner = open_scanner(settings) if scan else ScanOff()
    moderator = open_moderator(settings.moderation) if moderate else OffModerator()
    if hasattr(moderator, "load"):
        moderator.load()  # once, before the threads start
    return Pipeline(settings, open_store(settings, metrics), catalog, open_queue(settings, catalog), scanner, moderator,
                    metrics, hash_index_for(settings.catalog))
