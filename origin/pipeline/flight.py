"""Single-flight: concurrent calls for one key run the function once and share its result."""
from __future__ import annotations

import threading
from typing import Callable, TypeVar

T = TypeVar("T")


class _Call:
    __slots__ = ("done", "result", "error")

    def __init__(self):
        self.done = threading.Event()
        self.result = None
        self.error: BaseException | None = None


class SingleFlight:
    def __init__(self):
        self._lock = threading.Lock()
        self._calls: dict[str, _Call] = {}

    def do(self, key: str, fn: Callable[[], T]) -> tuple[T, bool]:
        """Run fn for key, or wait for the run already under way. Returns (result, ran_here)."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if leader:
                call = self._calls[key] = _Call()
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.result, False
        try:
            call.result = fn()
            return call.result, True
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()
