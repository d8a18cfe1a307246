"""The order in which a training run sees its data, so that a resumed run repeats an uninterrupted one.

Every sample is drawn from (seed, epoch, index): a sharded, epoch-seeded sampler that can skip the batches a
resumed run already consumed, and the loop over the optimizer steps that sets each epoch on the sampler and
the dataset.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from latentsync.errors import InputError


class EpochShardSampler(Sampler[int]):
    """Like DistributedSampler(shuffle, drop_last): a permutation seeded by seed + epoch, split across ranks.

    `set_epoch(epoch, skip)` also skips the first `skip` indices of this rank's share, which is how a resumed
    run picks up in the middle of an epoch without loading (or drawing random numbers for) the skipped samples.
    """

    def __init__(self, size: int, num_replicas: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True):
        if size < num_replicas:
            raise InputError(f"dataset of {size} samples cannot be split across {num_replicas} processes")
        self.size, self.num_replicas, self.rank = size, num_replicas, rank
        self.seed, self.shuffle = int(seed), shuffle
        self.per_rank = size // num_replicas
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = int(epoch), int(skip)

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.size)
        share = order[: self.per_rank * self.num_replicas][self.rank :: self.num_replicas]
        return iter(share[self.skip :].tolist())

    def __len__(self) -> int:
        return self.per_rank - self.skip


def make_loader(dataset, batch_size: int, sampler: Sampler, num_workers: int) -> DataLoader:
    """DataLoader over `sampler` that drops the last partial batch; refuses data too small for one batch."""
    if len(sampler) < batch_size:
        raise InputError(f"{len(dataset)} clips give {len(sampler)} samples per process per epoch, fewer than "
                         f"data.batch_size={batch_size}: lower the batch size or add clips")
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      drop_last=True, pin_memory=False, persistent_workers=False)


def data_position(global_step: int, batches_per_epoch: int, accumulation: int) -> tuple[int, int]:
    """(epoch, batches already consumed in it) after `global_step` optimizer steps."""
    if batches_per_epoch <= 0:
        raise InputError("the training data gives no full batch: lower data.batch_size or add clips")
    consumed = global_step * accumulation
    return consumed // batches_per_epoch, consumed % batches_per_epoch


def training_batches(loader: DataLoader, sampler: EpochShardSampler, dataset, global_step: int, max_steps: int,
                     accumulation: int = 1) -> Iterator[tuple[int, dict]]:
    """(epoch, batch) for the optimizer steps after `global_step` up to `max_steps`, `accumulation` batches each,
    epoch after epoch: a resumed run skips what the earlier one consumed of its epoch, and every epoch the
    sampler and the dataset draw a new order and new windows."""
    epoch, skip = data_position(global_step, len(loader), accumulation)
    left = (max_steps - global_step) * accumulation
    while left > 0:
        sampler.set_epoch(epoch, skip * loader.batch_size)
        dataset.set_epoch(epoch)
        for batch in loader:
            yield epoch, batch
            left -= 1
            if left == 0:
                return
        epoch, skip = epoch + 1, 0
