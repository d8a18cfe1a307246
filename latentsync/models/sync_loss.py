"""SyncNet scores and losses: the cosine similarity of the two embeddings *is* the sync probability.

StableSyncNet has no classifier head. Both towers end in a ReLU, so the unit embeddings are
non-negative and their cosine lies in [0, 1]; LatentSync feeds it straight into a binary
cross-entropy ("cosine loss"). Training the syncnet uses y=1 for in-sync and y=0 for shifted
pairs; the U-Net's sync loss uses y=1 only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SYNC_DECISION_THRESHOLD = 0.5  # eval/eval_syncnet_acc.py: a pair counts as "in sync" above this


def sync_probability(vision_embeds: torch.Tensor, audio_embeds: torch.Tensor) -> torch.Tensor:
    """Per-pair sync probability, shape (b,): cosine similarity of matching rows."""
    return F.cosine_similarity(vision_embeds, audio_embeds, dim=1)


def sync_predictions(
    vision_embeds: torch.Tensor, audio_embeds: torch.Tensor, threshold: float = SYNC_DECISION_THRESHOLD
) -> torch.Tensor:
    """Hard in-sync decisions as floats (1 = in sync), as the official accuracy evaluation makes them."""
    return (sync_probability(vision_embeds, audio_embeds) > threshold).float()


def cosine_loss(vision_embeds: torch.Tensor, audio_embeds: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample BCE between the sync probability and labels y ((b, 1) or (b,)); returns shape (b,).

    Same contract as the official `latentsync.utils.util.cosine_loss` (reduction="none"); callers
    take `.mean()`. Labels are matched to the similarity's dtype and device. The similarity is
    clamped to [0, 1] only so that rounding (e.g. 1.0000001 for identical embeddings) cannot make
    BCE raise; in-range values, and so the official numbers, are untouched.
    """
    sims = sync_probability(vision_embeds, audio_embeds).clamp(0.0, 1.0)
    target = y.reshape(sims.shape).to(dtype=sims.dtype, device=sims.device)
    return F.binary_cross_entropy(sims, target, reduction="none")


def sync_loss(vision_embeds: torch.Tensor, audio_embeds: torch.Tensor) -> torch.Tensor:
    """The U-Net's SyncNet supervision: mean BCE towards "in sync" (y = 1), computed in fp32."""
    vision_embeds, audio_embeds = vision_embeds.float(), audio_embeds.float()
    ones = torch.ones(vision_embeds.shape[0], device=vision_embeds.device)
    return cosine_loss(vision_embeds, audio_embeds, ones).mean()
