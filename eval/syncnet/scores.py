"""Offset search and sync scores over SyncNet embeddings (LSE-D, LSE-C, AV offset).

Arithmetic follows syncnet_python's `calc_pdist` / `evaluate()` so results match the official numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import signal

FRAMEWISE_MEDIAN_KERNEL = 9


def calc_pdist(feat1: torch.Tensor, feat2: torch.Tensor, vshift: int = 10) -> torch.Tensor:
    """Distances between video window i and audio window i+s for s in -vshift..vshift: (N, 2*vshift+1).

    Audio rows outside the sequence are zero vectors, as in the original (so edge shifts compare
    against the video embedding's own norm).
    """
    num = feat1.shape[0]
    padded = F.pad(feat2, (0, 0, vshift, vshift))
    columns = [F.pairwise_distance(feat1, padded[j : j + num]) for j in range(2 * vshift + 1)]
    return torch.stack(columns, dim=1)


@dataclass
class SyncScores:
    """Result of one offset search. `min_dist` is LSE-D, `confidence` is LSE-C."""

    av_offset: int
    min_dist: float
    confidence: float
    mean_dists: torch.Tensor
    framewise_conf: np.ndarray

    def as_dict(self) -> dict:
        return {"av_offset": self.av_offset, "lse_d": self.min_dist, "lse_c": self.confidence}


def sync_scores(im_feat: torch.Tensor, cc_feat: torch.Tensor, vshift: int) -> SyncScores:
    """Best offset, its mean distance (LSE-D) and median-minus-minimum confidence (LSE-C).

    A positive offset means audio window k matches video window k+offset (the audio leads).
    """
    if im_feat.shape != cc_feat.shape or im_feat.ndim != 2 or im_feat.shape[0] == 0:
        raise ValueError(
            f"need two non-empty (N, D) feature matrices of the same shape, got {tuple(im_feat.shape)} "
            f"and {tuple(cc_feat.shape)}"
        )
    dists = calc_pdist(im_feat, cc_feat, vshift=vshift)
    # Mean over windows taken along contiguous rows of the (shifts, windows) layout, as the original
    # does; the other layout differs in the last bits.
    mean_dists = dists.t().contiguous().mean(dim=1)
    min_dist, min_index = torch.min(mean_dists, 0)
    median = torch.median(mean_dists)
    framewise = signal.medfilt((median - dists[:, min_index]).numpy(), kernel_size=FRAMEWISE_MEDIAN_KERNEL)
    return SyncScores(
        av_offset=int(vshift - min_index.item()),
        min_dist=float(min_dist.item()),
        confidence=float((median - min_dist).item()),
        mean_dists=mean_dists,
        framewise_conf=framewise,
    )
