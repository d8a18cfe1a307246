"""What a step is: `setup()` once per worker (models), then `process(item)` per video -> an Outcome.

A step writes its files only into `item.tmp_dir` and names where each should end up; the runner moves
them into the output folder once `process` returned, then records the item in the manifest. So a step
never leaves a half-written file under its final name, whatever happens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from data_processing.settings import DataProcessingSettings

KEPT, DROPPED, ERROR = "kept", "dropped", "error"


@dataclass(frozen=True)
class WorkItem:
    """One video a step processes."""

    item: str  # POSIX path relative to the step's input folder (the manifest key)
    source: str  # path relative to input_dir of the original video it comes from
    input_path: Path
    output_dir: Path
    tmp_dir: Path  # private scratch folder, removed after the item

    def output_name(self, suffix: str = "", extension: str = ".mp4") -> str:
        """Output path relative to the output folder: same sub-folder and stem as the input, plus `suffix`."""
        rel = Path(self.item)
        return (rel.parent / f"{rel.stem}{suffix}{extension}").as_posix()

    def scratch(self, name: str) -> Path:
        return self.tmp_dir / name


@dataclass
class Outcome:
    """Result of one item. `outputs` maps output names (relative to the output folder) to finished files in
    tmp_dir; a value of None records an output that is already in place (the broken-video check)."""

    status: str
    reason: str | None = None  # short machine-readable code when dropped, e.g. "too_short"
    detail: str | None = None  # the human explanation
    outputs: dict[str, Path | None] = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    duration: float | None = None  # seconds of media in the input

    @classmethod
    def kept(cls, outputs: dict, duration: float | None = None, **scores) -> Outcome:
        return cls(KEPT, outputs=outputs, duration=duration, scores=scores)

    @classmethod
    def dropped(cls, reason: str, detail: str, duration: float | None = None, **scores) -> Outcome:
        return cls(DROPPED, reason=reason, detail=detail, duration=duration, scores=scores)


def describe_error(exc: BaseException, item: WorkItem) -> str:
    """An error message fit for the manifest: the item's relative name instead of the absolute path, without
    decord's timestamped source locations (so the same failure reads the same on every run)."""
    message = str(exc).replace(str(item.input_path), item.item)
    message = re.sub(r"\[\d{2}:\d{2}:\d{2}\] \S+:\d+: ", "", message)
    return message.strip()


class Drop(Exception):
    """Raised inside a step when an item must be dropped for a known reason (recorded, not an error)."""

    def __init__(self, reason: str, detail: str, duration: float | None = None, **scores):
        super().__init__(detail)
        self.reason, self.detail, self.duration, self.scores = reason, detail, duration, scores


class Step:
    """Base class. Subclasses set `name` and implement `process`; model steps also override `setup`."""

    name = ""

    def __init__(self, cfg: DataProcessingSettings, worker_index: int = 0, layout=None):
        self.cfg = cfg
        self.worker_index = worker_index
        self.layout = layout  # data_processing.layout.Layout of the run (folders, manifests)

    @classmethod
    def check_requirements(cls, cfg: DataProcessingSettings) -> None:
        """Raise a clear error, before any item is processed, when a model or checkpoint is missing."""

    def setup(self) -> None:
        """Load models; called once per worker process before the first item."""

    def process(self, item: WorkItem) -> Outcome:
        raise NotImplementedError
