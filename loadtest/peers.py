"""The peers the throughput benchmark measures against, set up in scratch directories (never project
dependencies): thumbor from PyPI in its own virtualenv, ipx (Node + sharp) from npm.

    thumbor   /tmp/imagehost-bench-thumbor: `pip install thumbor`; one process per core,
              file loader over the photo directory, no storage and no result storage (every
              request renders), PIL engine (thumbor's default)
    ipx       /tmp/imagehost-bench-ipx: `npm i ipx`; one Node process per core, ipxFSStorage
              over the photo directory (sharp: libvips; ipx keeps no result cache)

Each peer is asked for the same work as the origin: width-bound (`{w}x0`, `w_{w}`), never
upscaled, WebP q80 or JPEG q82, metadata stripped.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from loadtest.launcher import free_port

SCRATCH = Path(tempfile.gettempdir())
THUMBOR_DIR = SCRATCH / "imagehost-bench-thumbor"
IPX_DIR = SCRATCH / "imagehost-bench-ipx"
IPX_SERVER = """import http from "node:http";
import { createIPX, ipxFSStorage, createIPXNodeServer } from "ipx";
const ipx = createIPX({ storage: ipxFSStorage({ dir: process.argv[2] }) });
http.createServer(createIPXNodeServer(ipx)).listen(Number(process.argv[3]), "127.0.0.1");
"""


def _run(command, cwd, timeout=900):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def install_thumbor() -> Path:
    python = THUMBOR_DIR / "venv" / "bin" / "python"
    if not (THUMBOR_DIR / "venv" / "bin" / "thumbor").exists():
        THUMBOR_DIR.mkdir(parents=True, exist_ok=True)
        if not python.exists():
            _run(["python3", "-m", "venv", "venv"], THUMBOR_DIR)
        _run([str(python), "-m", "pip", "install", "--quiet", "thumbor"], THUMBOR_DIR)
    return THUMBOR_DIR / "venv" / "bin" / "thumbor"


def install_ipx() -> Path:
    if not (IPX_DIR / "node_modules" / "ipx").exists():
        if shutil.which("npm") is None:
            raise RuntimeError("ipx needs Node and npm (apt-get install nodejs npm)")
        IPX_DIR.mkdir(parents=True, exist_ok=True)
        _run(["npm", "init", "-y"], IPX_DIR)
        _run(["npm", "i", "ipx"], IPX_DIR)
    server = IPX_DIR / "server.mjs"
    server.write_text(IPX_SERVER)
    return server


class Peer:
    """`processes` servers of one peer on free ports; `url(i, name, width, fmt)` spreads over them."""

    def __init__(self, name: str, photo_dir: Path, processes: int):
        self.name = name
        self.photo_dir = photo_dir
        self.ports = [free_port() for _ in range(processes)]
        self.procs: list[subprocess.Popen] = []
        self.log = SCRATCH / f"imagehost-bench-{name}.log"

    def start(self) -> "Peer":
        out = open(self.log, "ab")
        for port in self.ports:
            self.procs.append(subprocess.Popen(self.command(port), stdout=out, stderr=subprocess.STDOUT,
                                               start_new_session=True, cwd=self.cwd()))
        out.close()
        deadline = time.monotonic() + 60
        for port in self.ports:
            while True:
                try:
                    requests.get(f"http://127.0.0.1:{port}/healthcheck", timeout=2)
                    break
                except requests.RequestException:
                    if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                        self.stop()
                        raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text()[-2000:]}")
                    time.sleep(0.2)
        return self

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def base(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i % len(self.ports)]}"


class Thumbor(Peer):
    def __init__(self, photo_dir: Path, processes: int, webp_quality: int, jpeg_quality: int):
        super().__init__("thumbor", photo_dir, processes)
        self.binary = install_thumbor()
        self.quality = {"webp": webp_quality, "jpeg": jpeg_quality}
        self.conf = THUMBOR_DIR / "thumbor.conf"
        self.conf.write_text(
            f"LOADER = 'thumbor.loaders.file_loader'\nFILE_LOADER_ROOT_PATH = '{photo_dir}'\n"
            "STORAGE = 'thumbor.storages.no_storage'\nRESULT_STORAGE = None\n"
            "PRESERVE_EXIF_INFO = False\nAUTO_WEBP = False\nALLOW_UNSAFE_URL = True\n"
            f"QUALITY = {jpeg_quality}\nWEBP_QUALITY = {webp_quality}\nMAX_AGE = 0\nENGINE_THREADPOOL_SIZE = 1\n")

    def cwd(self):
        return THUMBOR_DIR

    def command(self, port):
        return [str(self.binary), "--port", str(port), "--ip", "127.0.0.1", "--conf", str(self.conf), "-l", "warning"]

    def url(self, i: int, name: str, width: int, fmt: str) -> str:
        return f"{self.base(i)}/unsafe/{width}x0/filters:format({fmt}):quality({self.quality[fmt]})/{name}"


class Ipx(Peer):
    def __init__(self, photo_dir: Path, processes: int, webp_quality: int, jpeg_quality: int):
        super().__init__("ipx", photo_dir, processes)
        self.server = install_ipx()
        self.quality = {"webp": webp_quality, "jpeg": jpeg_quality}

    def cwd(self):
        return IPX_DIR

    def command(self, port):
        return ["node", str(self.server), str(self.photo_dir), str(port)]

    def url(self, i: int, name: str, width: int, fmt: str) -> str:
        return f"{self.base(i)}/w_{width},f_{fmt},q_{self.quality[fmt]}/{name}"
