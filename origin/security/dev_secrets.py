"""Secrets for a zero-configuration run: generated once into the data directory.

`imagehost serve` (and the edge launcher) call `ensure` before starting anything:
every secret setting left empty is filled from {data_dir}/secrets.json, which is
created with fresh random values on first use (mode 0600). Settings given in the
environment always win. Production deployments set them explicitly.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import replace

GENERATED = ("api_keys", "reviewer_keys", "signing_keys", "webhook_secret")


def _fresh() -> dict[str, str]:
    return {
        "api_keys": f"dev-{secrets.token_urlsafe(18)}:dev",
        "reviewer_keys": f"rev-{secrets.token_urlsafe(18)}:reviewer",
        "signing_keys": f"k1:{secrets.token_urlsafe(32)}",
        "webhook_secret": secrets.token_urlsafe(32),
    }


def ensure(settings):
    """Return (settings with every empty secret filled, names of the filled ones)."""
    missing = [name for name in GENERATED if not getattr(settings, name)]
    if not missing:
        return settings, []
    path = settings.data_dir / "secrets.json"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _create(path)
    stored = json.loads(path.read_text())
    filled = {name: stored[name] for name in missing}
    return replace(settings, **filled), missing


def _create(path) -> None:
    """Write fresh secrets whole, then link them into place: concurrent starters agree on one file."""
    tmp = path.with_name(f".secrets-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(_fresh(), fh, indent=2)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process won; its secrets count
    finally:
        os.unlink(tmp)


def export(settings, names) -> None:
    """Put filled secrets into this process's environment, for the processes it starts."""
    for name in names:
        os.environ["IMAGEHOST_" + name.upper()] = getattr(settings, name)
