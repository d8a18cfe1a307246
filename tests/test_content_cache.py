"""EntryCache: entries of named tensors + metadata that round-trip bit-exactly, are never used when damaged or
misplaced, stay within a size limit (least recently used out first) and survive concurrent runs."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import time
import traceback
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors import SafetensorError

from latentsync.config import CONFIG_DIR
from latentsync.utils import content_cache
from latentsync.utils.content_cache import (
    CACHE_DIR_ENV,
    STALE_TEMP_SECONDS,
    EntryCache,
    content_key,
    default_cache_dir,
    open_entry_cache,
)

LOGGER = "latentsync.utils.content_cache"


def every_dtype() -> dict[str, torch.Tensor]:
    """One tensor per stored dtype, with values that a lossy conversion would change."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(3, 5, generator=gen) * 1e3
    return {
        "fp32": base,
        "fp16": base.half(),
        "bf16": base.bfloat16(),
        "uint8": torch.randint(0, 256, (4, 4), generator=gen, dtype=torch.uint8),
        "int64": torch.tensor([-(2**62), 2**62 + 1, 0]),
        "bool": torch.rand(7, generator=gen) > 0.5,
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 4),
        "view": base[1:3],  # a slice of a larger tensor is stored as itself
        "special": torch.tensor([float("nan"), float("inf"), -0.0]),
    }


def small_entry(seed: int) -> dict[str, torch.Tensor]:
    return {"moments": torch.full((64,), float(seed)), "boxes": torch.arange(4) + seed}


def test_every_dtype_round_trips_bit_exactly(tmp_path):
    cache = EntryCache(tmp_path)
    tensors = every_dtype()
    meta = {"frames": 3, "fps": 25.0, "boxes": [(1, 2), (3, 4)], "face": {"detector": "mediapipe"}}
    assert cache.put("k", tensors, meta) == tmp_path / "k.safetensors"
    entry = cache.get("k")
    assert set(entry.tensors) == set(tensors)
    for name, tensor in tensors.items():
        got = entry.tensors[name]
        assert got.dtype == tensor.dtype and got.shape == tensor.shape, name
        assert torch.equal(got.reshape(-1).view(torch.uint8), tensor.reshape(-1).view(torch.uint8)), name
    assert entry.meta == {"frames": 3, "fps": 25.0, "boxes": [[1, 2], [3, 4]], "face": {"detector": "mediapipe"}}


def test_an_absent_entry_is_a_silent_miss(tmp_path, caplog):
    assert EntryCache(tmp_path / "not_yet").get("k") is None
    assert not caplog.records


def truncate(path):
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)


def flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one bit of the last tensor's data
    path.write_bytes(bytes(data))


def write_garbage(path):
    path.write_bytes(b"not a safetensors file")


@pytest.mark.parametrize("damage", [truncate, flip_last_byte, write_garbage])
def test_a_damaged_entry_is_warned_about_deleted_and_missed(tmp_path, caplog, damage):
    cache = EntryCache(tmp_path, what="prepared-video cache")
    path = cache.put("k", small_entry(1), {"n": 1})
    damage(path)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert cache.get("k") is None
    assert len(caplog.records) == 1 and str(path) in caplog.text and "prepared-video cache" in caplog.text
    assert not path.exists()
    cache.put("k", small_entry(1), {"n": 1})  # recomputed and stored again: a hit
    assert cache.get("k").meta == {"n": 1}


def test_an_entry_copied_under_another_key_is_not_used(tmp_path, caplog):
    cache = EntryCache(tmp_path)
    source = cache.put("a", small_entry(1), {})
    shutil.copyfile(source, cache.path_for("b"))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert cache.get("b") is None
    assert "another key" in caplog.text and str(cache.path_for("b")) in caplog.text
    assert not cache.path_for("b").exists() and cache.get("a") is not None


def test_a_single_tensor_cache_file_is_not_an_entry(tmp_path, caplog):
    from safetensors.torch import save_file

    save_file({"features": torch.ones(2)}, tmp_path / "k.safetensors")  # a TensorCache file: no entry header
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert EntryCache(tmp_path).get("k") is None
    assert "no entry header" in caplog.text


def entry_size(tmp_path) -> int:
    """The file size of a `small_entry` (all of them have the same size)."""
    return os.path.getsize(EntryCache(tmp_path / "probe").put("probe", small_entry(0), {}))


def set_last_use(cache, key, seconds_ago):
    when = time.time() - seconds_ago
    os.utime(cache.path_for(key), (when, when))


def test_put_evicts_the_least_recently_used_entries(tmp_path):
    cache = EntryCache(tmp_path / "c", max_bytes=3 * entry_size(tmp_path))
    for age, key in ((300, "a"), (200, "b"), (100, "c")):
        cache.put(key, small_entry(1), {})
        set_last_use(cache, key, age)
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("d", small_entry(2), {})
    assert sorted(p.stem for p in cache.directory.iterdir()) == ["a", "c", "d"]  # b was the least recently used
    cache.put("e", small_entry(3), {})
    assert sorted(p.stem for p in cache.directory.iterdir()) == ["a", "d", "e"]


def test_put_keeps_the_folder_within_the_limit(tmp_path):
    size = entry_size(tmp_path)
    cache = EntryCache(tmp_path / "c", max_bytes=2 * size + size // 2)
    for i in range(6):
        cache.put(f"k{i}", small_entry(i), {})
        set_last_use(cache, f"k{i}", 100 - i)
        total = sum(p.stat().st_size for p in cache.directory.iterdir())
        assert total <= cache.max_bytes
    assert sorted(p.stem for p in cache.directory.iterdir()) == ["k4", "k5"]


def test_an_entry_larger_than_the_limit_is_not_kept(tmp_path, caplog):
    size = entry_size(tmp_path)
    cache = EntryCache(tmp_path / "c", max_bytes=2 * size)
    cache.put("small", small_entry(1), {})
    big = {"moments": torch.zeros(size)}  # 4 bytes per element: four times an entry
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert cache.put("big", big, {}) is None
    assert len(caplog.records) == 1 and "exceed the cache limit" in caplog.text
    assert [p.name for p in cache.directory.iterdir()] == ["small.safetensors"]  # nothing evicted for it


def test_put_removes_temp_files_of_crashed_writers(tmp_path):
    cache = EntryCache(tmp_path)
    stale, fresh = tmp_path / ".abc.stale.tmp", tmp_path / ".abc.fresh.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"half an entry")
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    cache.put("k", small_entry(1), {})
    assert not stale.exists() and fresh.exists()  # a fresh one may belong to a writer still at work


def test_an_unwritable_cache_never_fails_the_run(tmp_path, caplog):
    (tmp_path / "file").write_bytes(b"")
    cache = EntryCache(tmp_path / "file" / "sub")  # its folder cannot be created
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert cache.put("k", small_entry(1), {}) is None
    assert "could not write" in caplog.text and cache.get("k") is None



def test_a_full_disk_never_fails_the_run(tmp_path, caplog, monkeypatch):
    def disk_full(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(content_cache, "save_file", disk_full)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert EntryCache(tmp_path).put("k", small_entry(1), {}) is None
    assert "No space left" in caplog.text and list(tmp_path.iterdir()) == []  # the partial temp file is gone

def test_cache_folders_come_from_the_caller_or_the_user_cache(tmp_path, monkeypatch):
    import platformdirs

    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    assert default_cache_dir() == Path(platformdirs.user_cache_dir("latentsync"))
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "env"))
    settings = OmegaConf.load(CONFIG_DIR / "inference.yaml").cache
    cache = open_entry_cache(None, settings.folder, settings.max_gb)
    assert cache.directory == tmp_path / "env" / "prepared" and cache.max_bytes == 5 * 10**9
    explicit = open_entry_cache(tmp_path / "mine", "prepared", 0)
    assert explicit.directory == tmp_path / "mine" / "prepared" and explicit.max_bytes is None


def test_keys_differ_with_any_part():
    parts = {"video": "ab12", "resolution": 256, "dtype": "fp16", "vae": "cd34", "face": {"detector": "mediapipe"}}
    key = content_key(**parts)
    assert key == content_key(**dict(reversed(parts.items())))
    assert all(content_key(**{**parts, name: "other"}) != key for name in parts)


# --- concurrent runs ---------------------------------------------------------------------------------------

ROUNDS = 60
KEYS = ("shared", "own0", "own1")


def writer_tensors(writer: int, key: str) -> dict[str, torch.Tensor]:
    """What writer `writer` stores under `key`: the two writers store different values for the shared key,
    so a reader can tell that an entry is wholly one writer's."""
    seed = 1000 * writer + KEYS.index(key)
    return {"moments": torch.full((2048,), float(seed)), "ids": torch.arange(16) * seed}


def check_entry(entry, key) -> None:
    expected = writer_tensors(entry.meta["writer"], key)
    assert entry.meta["key"] == key
    assert all(torch.equal(entry.tensors[name], tensor) for name, tensor in expected.items())


def run_worker(role: int, directory, max_bytes, start, results) -> None:
    """Role 0 and 1 write (the shared key and their own); role 2 reads every key over and over. Reports any
    exception or logged warning (a warning would mean a reader met a partial or mixed entry)."""
    warnings = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())
    logging.getLogger(LOGGER).addHandler(handler)
    try:
        torch.set_num_threads(1)
        cache, hits = EntryCache(directory, max_bytes=max_bytes), 0
        start.wait(timeout=60)  # all three at once
        rounds, deadline = 0, time.monotonic() + 60
        # the reader goes on until it has met entries (on a loaded machine its misses can outrun the first write)
        while rounds < ROUNDS or (role == 2 and hits == 0 and time.monotonic() < deadline):
            rounds += 1
            for key in ("shared", f"own{role}") if role < 2 else KEYS:
                if role < 2:
                    cache.put(key, writer_tensors(role, key), {"writer": role, "key": key})
                elif (entry := cache.get(key)) is not None:
                    check_entry(entry, key)
                    hits += 1
        results.put((role, warnings, hits, None))
    except BaseException:  # noqa: B036 (reported to the parent, which fails the test)
        results.put((role, warnings, 0, traceback.format_exc()))


def test_concurrent_writers_and_a_reader_leave_only_valid_entries(tmp_path):
    probe = EntryCache(tmp_path / "probe").put("shared", writer_tensors(0, "shared"), {"writer": 0, "key": "shared"})
    max_bytes = 2 * os.path.getsize(probe) + 100  # room for two of the three keys: eviction runs all along
    ctx = multiprocessing.get_context("fork")
    results, start = ctx.Queue(), ctx.Barrier(3)
    workers = [ctx.Process(target=run_worker, args=(role, tmp_path / "c", max_bytes, start, results))
               for role in range(3)]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert [(role, warnings, error) for role, warnings, _, error in sorted(reports)] == [
        (0, [], None), (1, [], None), (2, [], None)]
    assert sorted(reports)[2][2] > 0  # the reader did find entries
    cache = EntryCache(tmp_path / "c", max_bytes=max_bytes)
    remaining = sorted(p.stem for p in cache.directory.iterdir())  # no temp files left
    assert set(remaining) <= set(KEYS) and 1 <= len(remaining) <= 2
    for key in remaining:
        check_entry(cache.get(key), key)
