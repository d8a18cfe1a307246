"""What a training run records about its losses: the loss log, the loss meter, the charts.

- loss log: per-step losses appended to a JSON-lines file next to the checkpoints (not kept in the sidecar);
- `LossMeter`: the step losses kept on the device and synced with the host once per logging interval;
- charts: PNG line charts of the loss/accuracy histories.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import torch

LOSS_LOG_NAME = "losses.jsonl"


def loss_log_path(checkpoint_dir: str | os.PathLike) -> Path:
    """The loss log of a run: one JSON object per step, in the folder of its checkpoints."""
    return Path(checkpoint_dir) / LOSS_LOG_NAME


def append_loss_log(path: str | os.PathLike, rows: Sequence[dict]) -> None:
    """Append rows (plain numbers) to a loss log; appending keeps every checkpoint sidecar small."""
    with open(path, "a", encoding="utf-8") as log:
        log.writelines(json.dumps(row) + "\n" for row in rows)


def read_loss_log(path: str | os.PathLike, up_to_step: int | None = None) -> list[dict]:
    """The rows of a loss log ([] if there is none); with `up_to_step` only those a checkpoint of that step
    covers (the run may have logged further). A torn last line (a crash while writing) is left out."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]  # the piece after the last newline is torn or empty
    rows = [json.loads(line) for line in lines if line]
    return [row for row in rows if up_to_step is None or row["step"] <= up_to_step]


def finite_or_raise(value: float, step: int, what: str = "loss") -> float:
    """Stop with a clear message instead of training on NaN/inf."""
    if not math.isfinite(value):
        raise FloatingPointError(f"{what} became {value} at step {step}; lower optimizer.lr or check the data")
    return value


class LossMeter:
    """Keeps each step's losses on the device and syncs them with the host only when asked (at the logging
    interval and before a checkpoint): one reduce and one transfer per interval instead of one per loss and step.
    Also measures step time and throughput over the interval. `names` are the losses of a step, the total first."""

    def __init__(self, accelerator, samples_per_step: int, names: Sequence[str]):
        self.accelerator, self.samples_per_step, self.names = accelerator, samples_per_step, tuple(names)
        self.steps, self.rows = [], []
        self.started = time.perf_counter()
        self.seconds_per_step = self.samples_per_second = float("nan")

    def add(self, step: int, losses: dict[str, torch.Tensor]) -> None:
        self.steps.append(step)
        self.rows.append(torch.stack([losses[k].detach().float() for k in self.names]))

    def flush(self) -> list[dict[str, float]]:
        """The pending steps' losses averaged over the processes, one {"step", *names} row per step (raising on
        a non-finite total)."""
        values = self.accelerator.reduce(torch.stack(self.rows), "mean").tolist()
        elapsed = time.perf_counter() - self.started
        self.seconds_per_step = elapsed / len(self.steps)
        self.samples_per_second = self.samples_per_step / self.seconds_per_step
        rows = []
        for step, row in zip(self.steps, values, strict=True):
            finite_or_raise(row[0], step)
            rows.append({"step": step, **dict(zip(self.names, row, strict=True))})
        self.steps, self.rows, self.started = [], [], time.perf_counter()
        return rows


def plot_chart(path: str | os.PathLike, *series: tuple[str, Sequence[float], Sequence[float]],
               ylabel: str = "Loss", title: str | None = None) -> Path:
    """Line chart of (label, steps, values) series saved as PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, steps, values in series:
        if len(steps):
            ax.plot(list(steps), list(values), label=label, marker="." if len(steps) < 30 else None)
    ax.set_xlabel("Step")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
