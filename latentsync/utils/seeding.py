"""Seeded randomness: every random draw of a training step comes from a generator seeded by (seed, rank, step),
so a resumed run repeats an uninterrupted one without saving RNG states, on any device type."""

from __future__ import annotations

import torch

RANK_SEED_STRIDE = 1_000_003  # per-rank streams must not overlap for nearby seeds


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """CPU generator for the random draws of one training step on one rank (noise, timesteps, VAE samples)."""
    return torch.Generator().manual_seed(int(seed) + RANK_SEED_STRIDE * int(rank) + 7919 * int(step))


def randn(shape, generator: torch.Generator, device, dtype=torch.float32) -> torch.Tensor:
    """Gaussian noise drawn on the CPU (same numbers on every device type) and moved to `device`."""
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(device=device, dtype=dtype)
