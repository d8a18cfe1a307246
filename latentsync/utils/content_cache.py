"""On-disk caches of computed tensors, keyed by content (not by file name).

`TensorCache` (one tensor per entry) serves the whisper features (`latentsync.whisper.audio2feature`) and the
SyncNet mel (`latentsync.data.mel_cache`); `EntryCache` (named tensors + JSON metadata per entry, checksummed,
size-limited with least-recently-used eviction) serves what inference prepares once per video and reuses for
every audio track. This module imports neither whisper, the datasets, the faces nor the pipelines.

A key is a sha256 of what determines the tensor: the input's content (a file's bytes, or the samples of an
array) and everything else that changes the result (model identity, settings, a format version). Entries
are `<key>.safetensors` files written to a temp name in the same folder and moved into place with
os.replace, so a reader never sees half a file; an unreadable entry is deleted and the caller recomputes it.
Several processes may share a folder: writers of one key each move a whole file into place (the last one
stays), and an entry that vanishes (evicted by another run) between a listing and a read is a plain miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
import torch
from safetensors import SafetensorError
from safetensors.torch import load, load_file, save_file

logger = logging.getLogger(__name__)

READ_CHUNK_BYTES = 1 << 22
ENTRY_SUFFIX = ".safetensors"
TEMP_SUFFIX = ".tmp"
STALE_TEMP_SECONDS = 3600  # a temp file this old belongs to a writer that crashed (a write takes seconds)
CACHE_DIR_ENV = "LATENTSYNC_CACHE_DIR"
ENTRY_HEADER = "latentsync.entry"  # the safetensors metadata key holding an entry's JSON header
ENTRY_FORMAT = 1  # bump when the header or the digest changes: older entries are then recomputed
BYTES_PER_GB = 10**9


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def array_digest(samples: np.ndarray) -> str:
    """sha256 of a waveform's float32 samples."""
    return hashlib.sha256(np.ascontiguousarray(samples, dtype=np.float32).tobytes()).hexdigest()


def content_key(**parts) -> str:
    """One hex key for the named parts (digests, options), hashed as sorted JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@contextmanager
def temp_file_beside(path: Path) -> Iterator[str]:
    """A temp file name in `path`'s folder (so os.replace into `path` is atomic), removed if still there at the
    end: a failed or abandoned write leaves nothing behind."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem[:16]}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        yield tmp_name
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp_name)


class TensorCache:
    """A folder of `<key>.safetensors` files, each holding one tensor under `tensor_name`.

    `what` names the cache in the warning logged when an entry is unreadable.
    """

    def __init__(self, directory: str | os.PathLike, tensor_name: str, what: str = "tensor cache"):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tensor_name = tensor_name
        self.what = what

    def path_for(self, key: str) -> Path:
        return self.directory / f"{key}.safetensors"

    def load(self, key: str, shape: Sequence[int | None]) -> torch.Tensor | None:
        """The cached tensor, or None when absent. `shape` is the expected shape, None for any size on an axis;
        an entry that cannot be read or has another shape is removed (and None returned)."""
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            tensor = load_file(path)[self.tensor_name]
            if tensor.ndim != len(shape) or any(n not in (None, m) for n, m in zip(shape, tensor.shape, strict=True)):
                raise ValueError(f"shape {tuple(tensor.shape)}, expected {tuple(shape)}")
        except Exception as exc:  # truncated file, wrong format, wrong shape: recompute instead of failing
            logger.warning("ignoring unreadable %s entry %s (%s); recomputing", self.what, path, exc)
            path.unlink(missing_ok=True)
            return None
        return tensor

    def store(self, key: str, tensor: torch.Tensor) -> Path:
        """Write atomically: temp file in the same folder, then os.replace."""
        path = self.path_for(key)
        with temp_file_beside(path) as tmp_name:
            save_file({self.tensor_name: tensor.detach().cpu().contiguous()}, tmp_name)
            os.replace(tmp_name, path)
        return path


def default_cache_dir() -> Path:
    """Where caches live without `--cache_dir`: $LATENTSYNC_CACHE_DIR, else the user cache folder
    (~/.cache/latentsync on Linux), so entries survive across runs and stay out of the user's project folders."""
    return Path(os.environ.get(CACHE_DIR_ENV) or platformdirs.user_cache_dir("latentsync"))


@dataclass(frozen=True)
class Entry:
    """What one cache entry holds: named tensors and a JSON-able metadata dict."""

    tensors: dict[str, torch.Tensor]
    meta: dict


def entry_digest(key: str, tensors: Mapping[str, torch.Tensor], meta: dict) -> str:
    """sha256 over the key, the metadata and each tensor's name, dtype, shape and bytes (in name order): stored
    with an entry and recomputed on every read, so a damaged entry, or one copied under another key, is never used."""
    digest = hashlib.sha256(json.dumps({"key": key, "meta": meta}, sort_keys=True).encode())
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        if tensor.numel():  # an empty tensor has no bytes (and may have a stride that refuses the byte view)
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # raw bytes of any dtype (bf16, bool)
    return digest.hexdigest()


def _discard(path: Path) -> None:
    """Delete `path` if it is there; a file another process removed first, or a read-only folder, is no error."""
    with suppress(OSError):
        path.unlink()


def _unshared(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU tensors that safetensors will save: it refuses two names over one storage (say,
    views into one batch), so a tensor whose storage an earlier name already uses is cloned."""
    seen, unshared = set(), {}
    for name, tensor in tensors.items():
        tensor = tensor.detach().cpu().contiguous()
        storage = tensor.untyped_storage().data_ptr()
        unshared[name] = tensor.clone() if storage in seen else tensor
        seen.add(storage)
    return unshared


def _read_entry_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the safetensors metadata of `path`, read through one open handle: once open() succeeds,
    a concurrent eviction or rewrite cannot pull the file away mid-read (FileNotFoundError: it was not there)."""
    with open(path, "rb") as handle:
        data = handle.read()
    (header_bytes,) = struct.unpack("<Q", data[:8])  # safetensors: u64 header length, JSON header, tensor data
    metadata = json.loads(data[8:8 + header_bytes]).get("__metadata__") or {}
    return load(data), metadata


def _read_entry(path: Path, key: str) -> Entry:
    """The entry in `path` after checking its format, its key and its digest; raises on any mismatch."""
    tensors, metadata = _read_entry_file(path)
    if ENTRY_HEADER not in metadata:
        raise ValueError("no entry header")
    header = json.loads(metadata[ENTRY_HEADER])
    if header.get("format") != ENTRY_FORMAT:
        raise ValueError(f"format {header.get('format')!r}, expected {ENTRY_FORMAT}")
    if header.get("key") != key:
        raise ValueError("written for another key")
    if header.get("sha256") != entry_digest(key, tensors, header.get("meta")):
        raise ValueError("content hash mismatch")
    return Entry(tensors, header["meta"])


class EntryCache:
    """A folder of `<key>.safetensors` entries (named tensors + a JSON header), at most `max_bytes` in all.

    `get` marks an entry used (its modification time); `put` then evicts the least recently used entries
    until the folder fits. `max_bytes=None` means no limit. `what` names the cache in warnings.
    """

    def __init__(self, directory: str | os.PathLike, max_bytes: int | None = None, what: str = "cache"):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.what = what

    def path_for(self, key: str) -> Path:
        return self.directory / f"{key}{ENTRY_SUFFIX}"

    def get(self, key: str) -> Entry | None:
        """The entry for `key`, or None: absent (or evicted by another run meanwhile), or damaged, which is
        logged as a warning naming the file and deleted so that the caller recomputes and stores it again."""
        path = self.path_for(key)
        try:
            entry = _read_entry(path, key)
        except FileNotFoundError:
            return None
        except Exception as exc:  # truncated, bit-flipped, another key's file, unreadable: never use it
            logger.warning("ignoring corrupt %s entry %s (%s); recomputing", self.what, path, exc)
            _discard(path)
            return None
        with suppress(OSError):  # gone meanwhile, or a read-only cache: it is only the eviction order
            os.utime(path)
        return entry

    def put(self, key: str, tensors: Mapping[str, torch.Tensor], meta: dict) -> Path | None:
        """Store an entry atomically, then evict least recently used ones beyond the limit. Returns its path, or
        None when it was not kept (larger than the whole limit, an unwritable folder, a full disk: a cache never
        fails a run). `meta` must be JSON-able."""
        meta = json.loads(json.dumps(meta))  # what a reader will get back (tuples become lists, ...)
        tensors = _unshared(tensors)
        header = json.dumps({"format": ENTRY_FORMAT, "key": key, "meta": meta,
                             "sha256": entry_digest(key, tensors, meta)})
        path = self.path_for(key)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._remove_stale_temp_files()
            if not self._write(path, tensors, header):
                return None
        except (OSError, SafetensorError) as exc:  # an unwritable folder, a full disk
            logger.warning("could not write %s entry %s (%s); continuing without it", self.what, path, exc)
            return None
        self._evict(keep=path)
        return path

    def _write(self, path: Path, tensors: dict[str, torch.Tensor], header: str) -> bool:
        """Write through a temp file and move it into place, unless it alone exceeds the limit."""
        with temp_file_beside(path) as tmp_name:
            save_file(tensors, tmp_name, metadata={ENTRY_HEADER: header})
            size = os.path.getsize(tmp_name)
            if self.max_bytes is not None and size > self.max_bytes:
                logger.warning("not keeping %s entry %s: %d bytes exceed the cache limit of %d bytes",
                               self.what, path.name, size, self.max_bytes)
                return False
            os.replace(tmp_name, path)
        return True

    def _entries(self) -> list[tuple[int, int, Path]]:
        """(last use in ns, size, path) of each entry; files removed since the listing are skipped."""
        found = []
        for path in self.directory.glob(f"*{ENTRY_SUFFIX}"):
            with suppress(FileNotFoundError):
                stat = path.stat()
                found.append((stat.st_mtime_ns, stat.st_size, path))
        return found

    def _evict(self, keep: Path) -> None:
        """Delete least recently used entries until the folder fits `max_bytes`, never `keep` (just written)."""
        if self.max_bytes is None:
            return
        entries = self._entries()
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            if path != keep:
                _discard(path)
                total -= size

    def _remove_stale_temp_files(self) -> None:
        """Remove temp files left by writers that crashed more than STALE_TEMP_SECONDS ago."""
        cutoff = time.time() - STALE_TEMP_SECONDS
        for path in self.directory.glob(f".*{TEMP_SUFFIX}"):
            with suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    _discard(path)


def open_entry_cache(cache_dir: str | os.PathLike | None, folder: str, max_gb: float,
                     what: str = "cache") -> EntryCache:
    """The `folder` cache under `cache_dir` (None: `default_cache_dir()`), limited to `max_gb` GB (0: no limit).
    `folder` and `max_gb` are configs/inference.yaml's `cache:` values, passed in by the caller."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    max_bytes = int(max_gb * BYTES_PER_GB) if max_gb > 0 else None
    return EntryCache(root / folder, max_bytes=max_bytes, what=what)
