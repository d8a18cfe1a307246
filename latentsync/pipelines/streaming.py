"""Run the pipeline's own stages beside the networks: a producer thread ahead of them, a consumer behind.

While the main thread has chunk k in the VAE/U-Net, `Prefetcher` is decoding and aligning chunk k+1 and
`Drain` is pasting back and encoding chunk k-1. Both queues are small and bounded, so at most a few chunks
of frames exist at any time; order is kept because each side is a single thread. An exception on either
side stops the other and is re-raised in the main thread. The busy seconds of each stage are added up from
any thread by `latentsync.utils.progress.StageClock`.

The workers leave torch's thread count alone: it is process-wide (`torch.set_num_threads` in a worker also
changes the networks' threads in the main thread).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


class Prefetcher:
    """Iterate `make_items()` in a worker thread, at most `depth` items ahead of the consumer."""

    def __init__(self, make_items: Callable[[], Iterator], depth: int = 2, name: str = "prefetch"):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(make_items,), name=name, daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, make_items) -> None:
        try:
            for item in make_items():
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(_Failure(exc))

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        """Stop the worker (it finishes the item in hand) and wait for it."""
        self._stop.set()
        self._thread.join()


class Drain:
    """Call `handle(item)` in a worker thread for each `submit`ted item, in order, `depth` items behind."""

    def __init__(self, handle: Callable, depth: int = 2, name: str = "drain"):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._handle = handle
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is not None:
                continue  # drop the rest after a failure; the main thread raises it
            try:
                self._handle(item)
            except BaseException as exc:
                self._error = exc

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, item) -> None:
        self._raise_if_failed()
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                self._raise_if_failed()
                if not self._thread.is_alive():  # pragma: no cover - the worker only ends on _DONE
                    raise RuntimeError("the output worker stopped unexpectedly") from None

    def finish(self) -> None:
        """Wait until every submitted item is handled; re-raise the worker's error if there was one."""
        self._queue.put(_DONE)
        self._thread.join()
        self._raise_if_failed()

    def abandon(self) -> None:
        """Stop after the item in hand (used when the main thread fails)."""
        self._error = self._error or RuntimeError("abandoned")
        self._queue.put(_DONE)
        self._thread.join()
