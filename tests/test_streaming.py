"""The producer/consumer threads of the pipeline: order, bounded look-ahead, errors from either side, timings."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from latentsync.pipelines.streaming import Drain, Prefetcher
from latentsync.utils.progress import StageClock


def test_prefetcher_keeps_order_and_stays_bounded():
    made = []

    def items():
        for k in range(20):
            made.append(k)
            yield k

    prefetch = Prefetcher(items, depth=1)
    seen = []
    for item in prefetch:
        time.sleep(0.01)
        # the worker may hold one item in the queue and one in hand, never more
        assert len(made) - len(seen) <= 3
        seen.append(item)
    prefetch.close()
    assert seen == list(range(20))


def test_prefetcher_reraises_the_workers_error_in_the_consumer():
    def items():
        yield 1
        raise ValueError("bad frame 7")

    prefetch = Prefetcher(items)
    with pytest.raises(ValueError, match="bad frame 7"):
        list(prefetch)
    prefetch.close()


def test_prefetcher_close_stops_a_worker_that_is_ahead():
    def endless():
        k = 0
        while True:
            k += 1
            yield k

    prefetch = Prefetcher(endless, depth=1)
    assert next(iter(prefetch)) == 1
    prefetch.close()  # returns: the worker noticed the stop while blocked on the full queue
    assert not prefetch._thread.is_alive()


def test_drain_handles_in_order_and_reports_its_error():
    handled = []
    drain = Drain(handled.append, depth=1)
    for k in range(10):
        drain.submit(k)
    drain.finish()
    assert handled == list(range(10))

    def fail(item):
        if item == 3:
            raise OSError(28, "No space left on device")
        handled.append(item)

    handled.clear()
    drain = Drain(fail, depth=1)
    with pytest.raises(OSError, match="No space left"):
        for k in range(50):
            drain.submit(k)
            time.sleep(0.005)
        drain.finish()
    assert handled == [0, 1, 2]
    drain.abandon()


def test_workers_leave_the_networks_thread_count_alone():
    """torch's intra-op thread count is process-wide: a worker must not change it under the U-Net."""
    torch.set_num_threads(2)
    prefetch = Prefetcher(lambda: iter([torch.ones(4) * 2]))
    list(prefetch)
    prefetch.close()
    drain = Drain(lambda x: x.sum())
    drain.submit(torch.ones(3))
    drain.finish()
    assert torch.get_num_threads() == 2


def test_stage_clock_adds_busy_time_from_several_threads():
    clock = StageClock()

    def work():
        with clock.measure("restore"):
            time.sleep(0.05)

    threads = [threading.Thread(target=work) for _ in range(4)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    busy = clock.as_dict()["restore"]
    assert busy >= 0.2 and wall < busy  # overlapping work: busy time adds up beyond the wall time
