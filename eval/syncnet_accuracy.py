"""Accuracy of a StableSyncNet on (frames, mel, label) batches: "in sync" when cos(vision, audio) > threshold.

Library form of the official eval/eval_syncnet_acc.py, so training validation and the CLI share it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass
class AccuracyReport:
    """Counts of a binary in-sync decision; label 1 = in sync."""

    true_positive: int = 0
    true_negative: int = 0
    false_positive: int = 0
    false_negative: int = 0
    cosine_sum_positive: float = 0.0
    cosine_sum_negative: float = 0.0

    @property
    def num_samples(self) -> int:
        return self.true_positive + self.true_negative + self.false_positive + self.false_negative

    @property
    def num_positive(self) -> int:
        return self.true_positive + self.false_negative

    @property
    def num_negative(self) -> int:
        return self.true_negative + self.false_positive

    @property
    def accuracy(self) -> float:
        return (self.true_positive + self.true_negative) / self.num_samples if self.num_samples else float("nan")

    def update(self, cosine: torch.Tensor, labels: torch.Tensor, threshold: float) -> None:
        predicted = cosine > threshold
        positive = labels.reshape(-1) > 0.5
        self.true_positive += int((predicted & positive).sum())
        self.true_negative += int((~predicted & ~positive).sum())
        self.false_positive += int((predicted & ~positive).sum())
        self.false_negative += int((~predicted & positive).sum())
        self.cosine_sum_positive += float(cosine[positive].double().sum())
        self.cosine_sum_negative += float(cosine[~positive].double().sum())

    def as_dict(self) -> dict:
        out = asdict(self)
        del out["cosine_sum_positive"], out["cosine_sum_negative"]
        out.update(num_samples=self.num_samples, accuracy=self.accuracy,
                   mean_cosine_positive=self.cosine_sum_positive / self.num_positive if self.num_positive else None,
                   mean_cosine_negative=self.cosine_sum_negative / self.num_negative if self.num_negative else None)
        return out

    def summary(self) -> str:
        d = self.as_dict()
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        return (
            f"SyncNet accuracy: {100 * self.accuracy:.2f}% over {self.num_samples} samples "
            f"({self.num_positive} in sync, {self.num_negative} off sync)\n"
            f"              predicted sync  predicted off\n"
            f"  in sync     {self.true_positive:>14}  {self.false_negative:>13}\n"
            f"  off sync    {self.false_positive:>14}  {self.true_negative:>13}\n"
            f"mean cosine: in sync {fmt(d['mean_cosine_positive'])}, off sync {fmt(d['mean_cosine_negative'])}"
        )


@torch.no_grad()
def syncnet_accuracy(
    model,
    batches: Iterable,
    threshold: float,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    max_samples: int | None = None,
) -> AccuracyReport:
    """Run `model(frames, mel) -> (vision_embeds, audio_embeds)` over `(frames, mel, label)` batches.

    `frames` is the SyncNet visual input (b, f*c, h, w) and `mel` the (b, 1, 80, t) window. Stops after
    `max_samples` samples when given (the last batch is truncated to fit).
    """
    report = AccuracyReport()
    for frames, mel, labels in batches:
        if max_samples is not None:
            room = max_samples - report.num_samples
            frames, mel, labels = frames[:room], mel[:room], labels[:room]
        vision, audio = model(frames.to(device, dtype), mel.to(device, dtype))
        cosine = F.cosine_similarity(vision.float(), audio.float()).cpu()
        report.update(cosine, labels.cpu(), threshold)
        if max_samples is not None and report.num_samples >= max_samples:
            break  # before asking for another batch (a new pass over the split, for the evaluation CLI)
    return report
