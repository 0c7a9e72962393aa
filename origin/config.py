"""Every IMAGEHOST_* setting, typed, in one place.

`Settings.from_env()` is the only function that reads the environment; everything
else receives a `Settings` (or the piece of it it needs) as an argument.
The README's configuration table lists the same names and defaults.
"""
from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

from origin import presets as preset_grammar
from origin.tiers import ARCHIVED, RuleError, parse_rule, parse_tier_dirs


class ConfigError(ValueError):
    """A setting has a value the origin cannot use."""


def _ints(text: str) -> tuple[int, ...]:
    values = tuple(sorted({int(part) for part in text.replace(" ", "").split(",") if part}))
    if not values or min(values) <= 0:
        raise ConfigError(f"expected a comma-separated list of positive integers, got {text!r}")
    return values


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"expected a boolean (1/0, true/false), got {text!r}")


@dataclass(frozen=True)
class Settings:
    # where and how the origin listens
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 0  # 0 = one per core
    threads: int = 4
    data_dir: Path = Path("./var")
    # ports
    store: str = "local"  # local | s3
    catalog_url: str = ""  # default: sqlite:///{data_dir}/catalog.sqlite3
    s3_bucket: str = "imagehost"
    s3_prefix: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    sqs_endpoint_url: str = ""  # default: the S3 endpoint (one server for both, as MinIO + ElasticMQ or moto)
    store_cache_bytes: int = 1024 * 1024 * 1024  # S3 only: local read-through copies of immutable objects
    # delivery contract
    widths: tuple[int, ...] = (150, 300, 600, 1200, 2400)
    thumb_sizes: tuple[int, ...] = (64, 150, 300)
    presets: str = preset_grammar.DEFAULT  # name=definition, comma-separated (origin/presets.py); empty: none
    auto_width: int = 1200  # /auto without usable client hints: the smallest allowed width >= this
    # rendering
    render_concurrency: int = 2
    vips_threads: int = 0  # libvips threads per render; 0: the cores shared by the renders one host runs at once
    jpeg_quality: int = 82
    jpeg_effort: int = 0  # 1: mozjpeg's trellis and scan search, fewer bytes for ~8x the encode time
    webp_quality: int = 80
    avif_quality: int = 55
    avif_effort: int = 2
    webp_effort: int = 4
    webp_deblock: bool = False  # 1: libwebp's filter strength chosen per picture, fewer bytes for ~6x the time
    jxl_quality: int = 75
    jxl_effort: int = 5
    # quality by target (origin/pipeline/targeting.py): SSIM per format, "" or 0: fixed qualities
    quality_target: str = ""  # off: the fixed qualities (QUALITY_FLOOR: the measured choice to turn it on)
    quality_price: str = ""  # bytes per pixel one unit of SSIM is worth, per format (QUALITY_PRICE: measured)
    intermediate_sizes: tuple[int, ...] = (1200, 2400)  # long sides of the render intermediates; 0: none
    miss_budget_ms: int = 100  # a negotiated miss never waits for an encode predicted longer; 0: never defers
    fallback_max_age: int = 10  # max-age of a fast-format answer while the asked one renders, and of an outage stand-in
    background_renders: int = 1  # threads per worker process rendering deferred formats
    record_cache_seconds: float = 2.0
    # limits (validation reads them before anything is decoded)
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 100_000_000
    max_side: int = 16_384
    max_frames: int = 300
    public_base_url: str = ""
    # edge (nginx in front of the origin)
    edge: bool = True  # make serve: nginx on `port`, gunicorn behind it on a unix socket; 0 = gunicorn on `port`
    origin_port: int = 0  # > 0: the origin behind the edge also listens on 127.0.0.1:origin_port
    referers: str = ""  # comma-separated host allow-list (wildcards like *.example.com); empty = no check
    allow_empty_referer: bool = True
    signing_required: bool = False
    signing_keys: str = ""  # id:secret,id:secret; the first signs. Empty: generated into data_dir
    purge_urls: str = ""  # comma-separated edge base URLs that receive purges
    # API
    api_keys: str = ""  # key:owner,key:owner. Empty under `serve`: a development key is generated
    reviewer_keys: str = ""  # key:reviewer,...
    upload_url_seconds: int = 900
    # pipeline
    queue: str = "local"  # local (in-process worker threads) | sqs
    sqs_queue_url: str = ""
    worker_threads: int = 2
    job_lease_seconds: int = 120  # visibility timeout: a job whose worker died is retried after this
    clamd_socket: str = ""  # default: {data_dir}/clamd/clamd.sock
    scan: bool = True
    moderation: str = "open_nsfw"  # open_nsfw | nudenet (opt-in extra) | fixed:<score> (tests) | off
    nsfw_threshold: float = 0.6
    webhook_secret: str = ""  # HMAC key for callback webhooks; empty: generated into data_dir
    # dedup (origin/ingest/dedup.py): exact duplicates are always aliased; these govern the perceptual kind
    dedup_perceptual: bool = True  # 0: near-duplicates are never collapsed (exact dedup stays on)
    dedup_perceptual_optout: str = ""  # owners whose uploads are never collapsed perceptually, comma-separated
    dedup_distance: int = 6  # Hamming distance of 64-bit pHashes at or under which two pictures are one
    dedup_inline: bool = True  # 1: the worker looks for near-duplicates before `ready`; 0: `imagehost compact` only
    compact_stop_after: str = ""  # test hook: `imagehost compact` kills itself (SIGKILL) after this step
    # storage lifecycle (origin/lifecycle/): TIER:DAYS per rule, "off" to drop one
    lifecycle_images: str = "STANDARD_IA:30"  # everything under images/ over lifecycle_min_bytes
    lifecycle_originals: str = "GLACIER_IR:365"  # sources and masters (tagged at write on S3)
    lifecycle_kept_sources: str = "GLACIER_IR:0"  # sources/ (owner-only copies); 0 days: written there
    lifecycle_min_bytes: int = 131072  # smaller objects stay in STANDARD (IA and Glacier IR bill 128 KB each)
    variant_budget: str = "0"  # bytes of lazy variants kept (K/M/G/T suffixes); 0: no bound
    access_flush_seconds: float = 30.0  # how often a process writes the last accesses it saw, batched
    restore_days: int = 7  # how long a restored copy of an archived source stays readable
    restore_tier: str = "Standard"  # Expedited | Standard | Bulk (S3 restore speed and price)
    cold_standin_seconds: int = 300  # Cache-Control max-age of an answer rendered from a stand-in
    local_tier_dirs: str = ""  # TIER=dir,… for the local store; default {data_dir}/store-tiers/{TIER}
    prices: str = "aws"  # price table of `imagehost cost`: aws | r2 | gcs | b2 | a JSON file
    lifecycle_stop_after: int = 0  # test hook: `imagehost lifecycle` kills itself after this many changes

    @property
    def catalog(self) -> str:
        return self.catalog_url or f"sqlite:///{self.data_dir / 'catalog.sqlite3'}"

    @property
    def perceptual_optout(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.dedup_perceptual_optout.split(",") if part.strip())

    @property
    def local_tiers(self) -> dict[str, Path]:
        """The local store's tier directories that are configured (the others: {store_dir}-tiers/{TIER})."""
        return {tier: Path(path) for tier, path in parse_tier_dirs(self.local_tier_dirs).items()}

    @functools.cached_property
    def named_presets(self) -> preset_grammar.Presets:
        """IMAGEHOST_PRESETS, parsed once per settings (validate() has already refused what cannot be)."""
        return preset_grammar.parse(self.presets)

    @property
    def variant_budget_bytes(self) -> int:
        return parse_bytes(self.variant_budget)

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def store_cache_dir(self) -> Path:
        return self.data_dir / "store-cache"

    @property
    def run_dir(self) -> Path:
        """Runtime files of a running instance: the origin's socket, the launcher's lock and pid."""
        return self.data_dir.resolve() / "run"

    @property
    def origin_socket(self) -> Path:
        """Where the edge reaches its own origin (a unix socket: no port to collide with another
        instance's). A data dir too deep for a socket path (108 bytes) gets one in the temp dir."""
        path = self.run_dir / "origin.sock"
        if len(str(path).encode()) > 100:
            digest = hashlib.sha1(str(path).encode()).hexdigest()[:16]
            path = Path(tempfile.gettempdir()) / f"imagehost-{digest}.sock"
        return path

    def public_base(self, request_prefix: str) -> str:
        """The URL clients reach us at: configured, or the scheme and host of the request at hand."""
        return self.public_base_url.rstrip("/") or request_prefix

    @property
    def base_url(self) -> str:
        return self.public_base(f"http://{self.host}:{self.port}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "Settings":
        env = os.environ if environ is None else environ
        values: dict = {}
        for f in fields(cls):
            name = "IMAGEHOST_" + f.name.upper()
            if name not in env:
                continue
            raw = env[name]
            try:
                values[f.name] = _parse(f.type, raw)
            except (ValueError, ConfigError) as exc:
                raise ConfigError(f"{name}: {exc}") from None
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.store not in {"local", "s3"}:
            raise ConfigError(f"IMAGEHOST_STORE must be 'local' or 's3', got {self.store!r}")
        if not self.catalog.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ConfigError("IMAGEHOST_CATALOG_URL must start with sqlite:/// or postgresql://")
        if not 0 <= self.avif_effort <= 9:
            raise ConfigError("IMAGEHOST_AVIF_EFFORT must be between 0 and 9")
        if self.jpeg_effort not in (0, 1):
            raise ConfigError("IMAGEHOST_JPEG_EFFORT must be 0 or 1")
        if not 0 <= self.webp_effort <= 6:
            raise ConfigError("IMAGEHOST_WEBP_EFFORT must be between 0 and 6")
        if not 1 <= self.jxl_effort <= 7 or not 1 <= self.jxl_quality <= 100:
            raise ConfigError("IMAGEHOST_JXL_EFFORT must be between 1 and 7, IMAGEHOST_JXL_QUALITY 1 and 100")
        try:
            quality_targets(self.quality_target)
        except ValueError as exc:
            raise ConfigError(f"IMAGEHOST_QUALITY_TARGET: {exc}") from None
        try:
            quality_prices(self.quality_price)
        except ValueError as exc:
            raise ConfigError(f"IMAGEHOST_QUALITY_PRICE: {exc}") from None
        if not self.widths or not self.thumb_sizes:
            raise ConfigError("IMAGEHOST_WIDTHS and IMAGEHOST_THUMB_SIZES must not be empty")
        try:
            preset_grammar.parse(self.presets)
        except preset_grammar.PresetError as exc:
            raise ConfigError(f"IMAGEHOST_PRESETS: {exc}") from None
        if self.auto_width < 1:
            raise ConfigError("IMAGEHOST_AUTO_WIDTH must be at least 1")
        if self.intermediate_sizes and min(self.intermediate_sizes) < max(self.thumb_sizes):
            raise ConfigError("IMAGEHOST_INTERMEDIATE_SIZES must be 0 (none) or each at least the largest thumbnail size")
        if self.miss_budget_ms < 0 or self.fallback_max_age < 1 or self.background_renders < 1:
            raise ConfigError("IMAGEHOST_MISS_BUDGET_MS must be >= 0, IMAGEHOST_FALLBACK_MAX_AGE and "
                              "IMAGEHOST_BACKGROUND_RENDERS >= 1")
        if self.render_concurrency < 1:
            raise ConfigError("IMAGEHOST_RENDER_CONCURRENCY must be at least 1")
        if not 0 <= self.dedup_distance <= 10:  # the pHash index guarantees full recall up to 10
            raise ConfigError("IMAGEHOST_DEDUP_DISTANCE must be between 0 and 10")
        try:
            parse_bytes(self.variant_budget)
        except ValueError as exc:
            raise ConfigError(f"IMAGEHOST_VARIANT_BUDGET: {exc}") from None
        try:
            for name in ("images", "originals", "kept_sources"):
                rule = parse_rule(name, getattr(self, f"lifecycle_{name}"))
                if rule and self.store == "local" and rule[0] in ARCHIVED:
                    raise RuleError(f"IMAGEHOST_LIFECYCLE_{name.upper()}: the local store has no {rule[0]} (it "
                                    "would need a restore); use STANDARD_IA or GLACIER_IR")
            parse_tier_dirs(self.local_tier_dirs)
        except RuleError as exc:
            raise ConfigError(str(exc)) from None
        if self.restore_tier not in {"Expedited", "Standard", "Bulk"}:
            raise ConfigError("IMAGEHOST_RESTORE_TIER must be Expedited, Standard or Bulk")


TARGETED_FORMATS = ("jpeg", "webp", "avif", "jxl")


# Quality by target as measured (README, Quality by target; loadtest/bench_quality.py): with
# IMAGEHOST_JPEG_EFFORT=1, IMAGEHOST_AVIF_EFFORT=3 and IMAGEHOST_WEBP_DEBLOCK=1, the same mean SSIM as
# the fixed qualities at every width for fewer bytes. The price decides; the floor only catches a
# picture the price would render worse than the fixed qualities render their worst. JPEG XL is
# searched only where named.
QUALITY_PRICE = "jpeg:3.7,webp:2.95,avif:1.48"
QUALITY_FLOOR = "jpeg:0.94,webp:0.94,avif:0.91"


def _per_format(text: str, parse_value) -> dict[str, float]:
    """"v" (every targeted format), "jpeg:v,avif:v" (those named), or "" / "0" (none)."""
    text = str(text).strip()
    if text in ("", "0"):
        return {}
    out: dict[str, float] = {}
    for part in text.split(","):
        fmt, sep, value = part.strip().rpartition(":")
        names = [fmt.strip()] if sep else list(TARGETED_FORMATS)
        if any(name not in TARGETED_FORMATS for name in names):
            raise ValueError(f"{fmt!r} is not one of {', '.join(TARGETED_FORMATS)}")
        out.update({name: parse_value(value) for name in names})
    return out


def quality_targets(text: str) -> dict[str, float]:
    """IMAGEHOST_QUALITY_TARGET, the SSIM floor: "0.975" (every lossy format), "jpeg:0.975,avif:0.97"
    (those named; the others keep their fixed quality), or "" / "0" (none: fixed qualities)."""
    def ssim(value: str) -> float:
        try:
            target = float(value)
        except ValueError:
            raise ValueError(f"expected an SSIM such as 0.975, got {value!r}") from None
        if not 0.5 <= target < 1.0:
            raise ValueError(f"an SSIM target must be at least 0.5 and below 1.0, got {target}")
        return target
    return _per_format(text, ssim)


def quality_prices(text: str) -> dict[str, float]:
    """IMAGEHOST_QUALITY_PRICE, bytes per pixel one unit of SSIM is worth: "jpeg:4.3,avif:1.8" (the
    quality rises while 0.001 more SSIM costs less than 0.0043 bytes per pixel), or "" (none)."""
    def price(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"expected bytes per pixel per unit of SSIM such as 4.3, got {value!r}") from None
        if not 0 < number <= 1000:
            raise ValueError(f"a price must be above 0 and at most 1000, got {number}")
        return number
    return _per_format(text, price)


BYTE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


def parse_bytes(text: str) -> int:
    """A size in bytes: "0", "52428800", "50M", "200G", "1.5T" (binary units; a trailing B is allowed)."""
    raw = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] in BYTE_UNITS and raw[-1:] else ""
    number = raw[: len(raw) - len(unit)].strip()
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"expected a size in bytes such as 50G, got {text!r}") from None
    if value < 0:
        raise ValueError(f"a size cannot be negative, got {text!r}")
    return int(value * BYTE_UNITS[unit])


def _parse(type_name: str, raw: str):
    if type_name == "int":
        return int(raw)
    if type_name == "float":
        return float(raw)
    if type_name == "bool":
        return _bool(raw)
    if type_name == "Path":
        return Path(raw)
    if type_name.startswith("tuple[int"):
        return () if raw.strip() in ("", "0") else _ints(raw)
    return raw
