"""Static sharding for schedulers such as SLURM: `--shard_index i --num_shards n` runs 1/n of the videos.

Shared by batch inference (`latentsync --batch`) and `python -m data_processing`, so it lives in the
package. In data processing an item's shard is a hash of its *source* video (the file in input_dir it
descends from), so a shard keeps every clip cut from its videos through all steps and never waits for
another shard's output.
"""

from __future__ import annotations

import hashlib

from latentsync.errors import InputError


def check_shard(shard_index: int, num_shards: int) -> None:
    if num_shards < 1:
        raise InputError(f"--num_shards must be >= 1, got {num_shards}")
    if not 0 <= shard_index < num_shards:
        raise InputError(f"--shard_index must be in [0, {num_shards - 1}] for --num_shards {num_shards}, got {shard_index}")


def shard_of(source: str, num_shards: int) -> int:
    """Stable across machines, runs and Python versions (no salted hash())."""
    digest = hashlib.sha1(source.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % num_shards


def shard_tag(shard_index: int, num_shards: int) -> str:
    return f"shard-{shard_index:05d}-of-{num_shards:05d}"
