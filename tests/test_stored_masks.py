"""Occluder masks kept for the whole run (latentsync/faces/stored_masks.py): exact, on disk, packed in chunks."""

from __future__ import annotations

import os
import sys
import tracemalloc

import numpy as np
import pytest

from latentsync.faces.stored_masks import MaskStore, StoredMask


def random_mask(rng, index: int) -> StoredMask:
    """A mask of random size and (incompressible) pixels, its box placed by `index`."""
    h, w = (int(v) for v in rng.integers(1, 40, 2))
    return StoredMask.of((index, index, index + w, index + h), rng.integers(0, 256, (h, w), dtype=np.uint8))


def test_the_store_gives_back_every_mask_exactly_in_any_order_and_replaced():
    rng = np.random.default_rng(0)
    order = [5, 0, 7, 3, 4, 200, 6]  # the masker puts in order, and a few earlier frames again when masks grow
    kept = {index: random_mask(rng, index) for index in order}
    store = MaskStore()
    for index in order:
        store.put(index, kept[index])
    kept[3] = random_mask(rng, 3)  # a mask that grew later
    store.put(3, kept[3])
    assert len(store) == len(kept) and list(store) == sorted(kept)
    assert store.indices().tolist() == sorted(kept)
    assert 3 in store and 1 not in store and 201 not in store and -1 not in store
    assert store.get(1) is None
    with pytest.raises(KeyError):
        store[1]
    for index, mask in kept.items():
        assert store[index] == mask
    assert dict(store.items()) == kept
    store.close()


@pytest.mark.parametrize("chunk_bytes", [None, 1, 700, 10**6])
def test_packed_in_chunks_and_back_is_the_same_store(chunk_bytes):
    """Chunks hold whole masks, in frame order, at most `chunk_bytes` unless one mask alone is larger."""
    rng = np.random.default_rng(1)
    store = MaskStore()
    kept = {index: random_mask(rng, index) for index in rng.choice(500, 60, replace=False).tolist()}
    for index, mask in kept.items():
        store.put(index, mask)
    arrays, chunks = store.packed(chunk_bytes)
    chunks = list(chunks)
    if chunk_bytes is None:
        assert len(chunks) == 1
    else:
        assert all(len(c) <= chunk_bytes or len(c) in {len(m.data) for m in kept.values()} for c in chunks)
    assert b"".join(chunks) == b"".join(kept[i].data for i in sorted(kept))
    back = MaskStore.unpacked(arrays, chunks, num_frames=500)
    assert dict(back.items()) == kept
    split_anywhere = [b"".join(chunks)[k:k + 333] for k in range(0, sum(map(len, chunks)), 333)]
    assert dict(MaskStore.unpacked(arrays, split_anywhere, num_frames=500).items()) == kept
    assert len(MaskStore.unpacked(*MaskStore().packed(), num_frames=1)) == 0


def test_packed_masks_that_do_not_add_up_are_refused():
    rng = np.random.default_rng(2)
    store = MaskStore()
    for index in (1, 4):
        store.put(index, random_mask(rng, index))
    arrays, chunks = store.packed()
    data = b"".join(chunks)
    with pytest.raises(ValueError, match="do not add up"):
        MaskStore.unpacked(arrays, [data[:-1]], num_frames=10)  # bytes missing
    with pytest.raises(ValueError, match="do not add up"):
        MaskStore.unpacked(arrays, [data + b"x"], num_frames=10)  # bytes left over
    with pytest.raises(ValueError, match="do not add up"):
        MaskStore.unpacked(arrays, [data], num_frames=4)  # a frame outside the video
    flipped = bytearray(data)
    flipped[3] ^= 0xFF
    with pytest.raises(ValueError, match="do not add up"):
        MaskStore.unpacked(arrays, [bytes(flipped)], num_frames=10)


def rng_bytes_at(seed: int, draw: int) -> bytes:
    """The `draw`-th 3,000 bytes `np.random.default_rng(seed).bytes(3000)` gives (0: the first)."""
    rng = np.random.default_rng(seed)
    for _ in range(draw):
        rng.bytes(3000)
    return rng.bytes(3000)


def test_memory_does_not_grow_with_the_masks_bytes():
    """3,000 masks of ~3 kB each (the size real feathered masks compress to): the store's memory grows by a few
    dozen bytes a mask (its index), not by the masks (~9 MB as bytes in memory)."""
    rng = np.random.default_rng(3)
    store = MaskStore()
    store.put(0, StoredMask((0, 0, 60, 50), (50, 60), rng.bytes(3000)))  # the temp file is opened
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for index in range(1, 3001):  # fresh bytes every time, as the masker makes them (they need not decompress)
            last = rng.bytes(3000)
            store.put(index, StoredMask((0, 0, 60, 50), (50, 60), last))
        del last
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 3000 * 100
    assert store[3000].data == rng_bytes_at(3, 3000)
    store.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the file's folder from /proc/self/fd")
def test_the_masks_file_lies_in_the_folder_given_and_has_no_name(tmp_path):
    """A run keeps its masks in its output's folder (nothing is written elsewhere), in a file without a name that
    the system removes when the store goes."""
    store = MaskStore(tmp_path)
    store.put(0, StoredMask.of((0, 0, 2, 2), np.zeros((2, 2), np.uint8)))
    where = os.readlink(f"/proc/self/fd/{store._file.fileno()}")
    assert where.startswith(str(tmp_path)) and list(tmp_path.iterdir()) == []
    store.close()


def test_a_full_disk_is_the_user_error_it_is(tmp_path, monkeypatch):
    """A short write (the disk or quota is full) raises ENOSPC naming the folder, which the CLI reports as a full
    disk (exit 2), never a half-kept mask."""
    import errno

    store = MaskStore(tmp_path)
    store.put(0, StoredMask.of((0, 0, 2, 2), np.zeros((2, 2), np.uint8)))
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: len(data) // 2)
    with pytest.raises(OSError) as raised:
        store.put(1, StoredMask.of((0, 0, 2, 2), np.ones((2, 2), np.uint8)))
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(tmp_path)
    assert 1 not in store and len(store) == 1
