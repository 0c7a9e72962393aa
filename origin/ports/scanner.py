"""Malware scan port: bytes in, clean or the name of what was found.

A scanner that cannot be reached raises ScannerUnavailable; the caller keeps
the image waiting and retries later. An unscanned image is never let through.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from origin.errors import Unavailable


class ScannerUnavailable(Unavailable):
    """The scanner cannot be reached or could not finish a scan (retry later)."""

    code = "scanner_unavailable"


class ScanFailed(ScannerUnavailable):
    """The scanner answered with an error (e.g. the stream is over its size limit).

    A subclass of ScannerUnavailable so code that only knows that one still never
    lets the image through; a caller may tell it apart to stop retrying.
    """

    code = "scan_failed"


@dataclass(frozen=True)
class ScanResult:
    clean: bool
    signature: str | None = None  # what was found, e.g. "Imagehost.Php.OpenTag.UNOFFICIAL"


CLEAN = ScanResult(True, None)


class Scanner(Protocol):
    def scan(self, data: bytes) -> ScanResult: ...

    def ping(self) -> bool: ...


class ScanOff:
    """IMAGEHOST_SCAN=0: scanning deliberately turned off; every image passes as clean."""

    def scan(self, data: bytes) -> ScanResult:
        return CLEAN

    def ping(self) -> bool:
        return True


def default_socket(settings) -> str:
    """IMAGEHOST_CLAMD_SOCKET, else {data_dir}/clamd/clamd.sock (where `ensure_clamd` starts one)."""
    return settings.clamd_socket or str(settings.data_dir.resolve() / "clamd" / "clamd.sock")
