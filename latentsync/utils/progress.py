"""Progress of one run, stage by stage: console bars (tqdm) and/or a callback, from one set of reports.

The pipeline reports at its existing progress points: the speaker pass and the face pass per frame,
denoising per step, writing per frame. The CLI shows them as bars; the app passes `callback(stage, done,
total)` and feeds `gr.Progress`. Reports may come from the pipeline's worker threads (the face pass runs in
the decode thread, writing in the write thread), so the callback is called under a lock, one at a time.
`StageClock` adds up the busy seconds of each stage from any thread, so the run's summary can show busy time
per stage next to the wall time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

from tqdm.auto import tqdm

STAGES = {  # name -> what the bar says
    "speaker": "finding the speaker",
    "faces": "detecting faces",
    "denoising": "denoising",
    "encoding": "encoding faces",
    "writing": "writing",
}


class StageProgress:
    """One stage's counter; `update(n)` like a tqdm bar."""

    def __init__(self, run: RunProgress, name: str, total: int, unit: str):
        self.run, self.name, self.total, self.done = run, name, int(total), 0
        self._bar = tqdm(total=total, desc=STAGES[name], unit=unit, disable=not run.show_bars)

    def update(self, n: int = 1) -> None:
        self._bar.update(n)
        with self.run.lock:
            self.done = min(self.total, self.done + n)
            if self.run.callback is not None:
                self.run.callback(self.name, self.done, self.total)

    def close(self) -> None:
        self._bar.close()


class RunProgress:
    """`show_bars`: tqdm bars on the console. `callback(stage, done, total)`: e.g. the app's progress display."""

    def __init__(self, show_bars: bool = True, callback: Callable[[str, int, int], None] | None = None):
        self.show_bars = bool(show_bars)
        self.callback = callback
        self.lock = threading.Lock()

    @classmethod
    def of(cls, progress) -> RunProgress:
        """A RunProgress from the pipeline's `progress` argument: a RunProgress, True/False, or a callback."""
        if isinstance(progress, RunProgress):
            return progress
        if callable(progress):
            return cls(show_bars=False, callback=progress)
        return cls(show_bars=bool(progress))

    def stage(self, name: str, total: int, unit: str = "frame") -> StageProgress:
        if name not in STAGES:
            raise ValueError(f"unknown progress stage {name!r}; one of {', '.join(STAGES)}")
        return StageProgress(self, name, total, unit)


class StageClock:
    """Busy seconds per stage, safe to add to from several threads."""

    def __init__(self):
        self._seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextmanager
    def measure(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return dict(self._seconds)
