"""A loopback TCP forwarder that can be cut: the fault drill's and the fault tests' way to take a
server out of reach (connections refused, open ones reset) without losing its state, as a network
partition or a dead load balancer would. moto keeps S3 in memory, so stopping it would lose the
bucket; cutting the path to it does not.

    proxy = TcpProxy(("127.0.0.1", 0), ("127.0.0.1", 9000)).start()
    proxy.cut()       # refuse new connections, reset open ones
    proxy.restore()   # listen again on the same port

`python -m edge.tcpproxy LISTEN_PORT TARGET_PORT` runs one in the foreground.
"""
from __future__ import annotations

import socket
import sys
import threading


class TcpProxy:
    def __init__(self, listen: tuple[str, int], target: tuple[str, int]):
        self.target = target
        self._host, self.port = listen
        self._server: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def start(self) -> "TcpProxy":
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self._host, self.port))
        server.listen(256)
        self.port = server.getsockname()[1]
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True, name="tcpproxy-accept").start()
        return self

    def cut(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            conns, self._open = self._open, set()
        if server is not None:
            try:
                server.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked on it: close() alone would not
            except OSError:
                pass
            server.close()
        for conn in conns:
            _close(conn, reset=True)

    def restore(self) -> None:
        if self._server is None:
            self.start()

    stop = cut

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client, reset=True)
                continue
            with self._lock:
                if self._server is not server:
                    _close(client, reset=True)
                    _close(upstream, reset=True)
                    return
                self._open |= {client, upstream}
            pair = [client, upstream, 2]  # both sockets, and how many pumps still run
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b, pair), daemon=True, name="tcpproxy-pump").start()

    def _pump(self, source: socket.socket, sink: socket.socket, pair: list) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)  # pass the end of this direction on
        except OSError:
            pass
        with self._lock:
            pair[2] -= 1
            last = pair[2] == 0
            if last:
                self._open.difference_update(pair[:2])
        if last:
            for conn in pair[:2]:
                _close(conn)


def _close(conn: socket.socket, reset: bool = False) -> None:
    try:
        if reset:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()
    except OSError:
        pass


if __name__ == "__main__":
    proxy = TcpProxy(("127.0.0.1", int(sys.argv[1])), ("127.0.0.1", int(sys.argv[2]))).start()
    print(f"forwarding 127.0.0.1:{proxy.port} -> 127.0.0.1:{sys.argv[2]}", flush=True)
    threading.Event().wait()
