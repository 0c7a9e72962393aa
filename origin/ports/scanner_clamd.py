"""Scanner adapter for clamd, speaking its socket protocol directly.

    zINSTREAM\\0, then chunks (4-byte big-endian length + bytes), then a zero
    length; clamd answers "stream: OK", "stream: <Signature> FOUND" or
    "<message> ERROR" (e.g. "INSTREAM size limit exceeded. ERROR").
    zPING\\0 -> "PONG".

`address` is a unix socket path or host:port. Every connection has a timeout.
Unreachable or timing out: ScannerUnavailable. An ERROR answer: ScanFailed (a
ScannerUnavailable). Either way the scan did not happen and nothing is decided.
"""
from __future__ import annotations

import socket

from origin.ports.scanner import CLEAN, ScanFailed, ScannerUnavailable, ScanResult

CHUNK = 1 << 20


def tcp_address(address: str) -> tuple[str, int] | None:
    host, sep, port = address.rpartition(":")
    if sep and host and port.isdigit() and "/" not in address:
        return host.strip("[]"), int(port)
    return None


class ClamdScanner:
    def __init__(self, address: str, timeout: float = 60.0, connect_timeout: float = 5.0):
        self.address = address
        self.timeout = timeout
        self.connect_timeout = connect_timeout

    def __repr__(self) -> str:
        return f"ClamdScanner({self.address!r})"

    def scan(self, data: bytes) -> ScanResult:
        return parse_reply(self._command(b"INSTREAM", data), self.address)

    def ping(self) -> bool:
        try:
            return self._command(b"PING") == "PONG"
        except ScannerUnavailable:
            return False

    def version(self) -> str:
        return self._command(b"VERSION")

    def _connect(self) -> socket.socket:
        tcp = tcp_address(self.address)
        try:
            if tcp:
                sock = socket.create_connection(tcp, timeout=self.connect_timeout)
            else:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.connect_timeout)
                sock.connect(self.address)
        except OSError as exc:
            raise ScannerUnavailable(f"clamd at {self.address} cannot be reached: {exc}", address=self.address) from None
        sock.settimeout(self.timeout)
        return sock

    def _command(self, command: bytes, payload: bytes | None = None) -> str:
        sock = self._connect()
        try:
            try:
                sock.sendall(b"z" + command + b"\0")
                if payload is not None:
                    _send_stream(sock, payload)
            except OSError as exc:
                # clamd stops reading and answers early (size limit); read what it said
                reply = _read_reply(sock, quiet=True)
                if not reply:
                    raise ScannerUnavailable(f"clamd at {self.address} broke off {command.decode()}: {exc}",
                                             address=self.address) from None
                return reply
            return _read_reply(sock)
        except OSError as exc:  # includes socket.timeout
            raise ScannerUnavailable(f"clamd at {self.address} failed during {command.decode()}: {exc}",
                                     address=self.address) from None
        finally:
            sock.close()


def _send_stream(sock: socket.socket, payload: bytes) -> None:
    view = memoryview(payload)
    for start in range(0, len(view), CHUNK):
        chunk = view[start : start + CHUNK]
        sock.sendall(len(chunk).to_bytes(4, "big"))
        sock.sendall(chunk)
    sock.sendall(b"\0\0\0\0")


def _read_reply(sock: socket.socket, quiet: bool = False) -> str:
    parts = []
    try:
        while True:
            block = sock.recv(4096)
            if not block:
                break
            parts.append(block)
            if block.endswith(b"\0"):
                break
    except OSError:
        if not quiet:
            raise
    return b"".join(parts).rstrip(b"\0\n").decode("utf-8", "replace")


def parse_reply(reply: str, address: str = "clamd") -> ScanResult:
    """'stream: OK' -> clean; 'stream: Sig FOUND' -> found; anything else -> ScanFailed."""
    body = reply[len("stream:"):].strip() if reply.startswith("stream:") else reply
    if body == "OK":
        return CLEAN
    if body.endswith(" FOUND"):
        return ScanResult(False, body[: -len(" FOUND")].strip())
    raise ScanFailed(f"clamd at {address} could not scan: {reply or 'no answer'}", address=address, reply=reply)
