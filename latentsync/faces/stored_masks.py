"""Occluder masks as the face pass keeps them for the whole run: compressed, and on disk, not in memory.

A frame's occluder mask is needed every time the frame is shown (ping-pong and loop show frames again) and by the
reuse cache at the end of the run, so it is kept for the whole run. `StoredMask` is one mask, zlib-compressed
uint8 (lossless); `MaskStore` keeps them by source frame, their bytes appended to an anonymous temp file (deleted
by the system when the store goes), so a run's memory does not grow with the masks' bytes (~3.4 kB a mask on the
occlusion bench): the store holds their index, ~100 bytes a mask (benchmarks/bench_mask_store.py,
docs/benchmarks.md). `packed` / `MaskStore.unpacked` turn a store into flat arrays and back, the bytes in chunks of
a given size, so that neither writing nor reading the reuse cache holds them all.
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import cv2
import numpy as np

OCCLUDER_STORE_SIDE = 128  # occluder masks are kept per source frame at most this many pixels a side


@dataclass(frozen=True)
class StoredMask:
    """One frame's occluder mask as the track keeps it: the frame box it covers (x0, y0, x1, y1), its stored size
    (h, w) and its uint8 pixels (255 = keep the original), zlib-compressed. Lossless; the feathered masks are
    mostly 0 and 255, so they shrink ~3.4x (11.6 to 3.4 kB on the occlusion bench's masks, docs/benchmarks.md)."""

    box: tuple[int, int, int, int]
    shape: tuple[int, int]
    data: bytes

    @classmethod
    def of_mask(cls, box, mask: np.ndarray) -> StoredMask:
        """A float mask in [0, 1] over `box`, stored at most `OCCLUDER_STORE_SIDE` pixels a side as uint8 (the mask
        is feathered, so little is lost)."""
        height, width = mask.shape
        scale = min(1.0, OCCLUDER_STORE_SIDE / max(height, width))
        small = cv2.resize(mask, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA) if scale < 1 else mask
        return cls.of(box, np.rint(np.clip(small, 0, 1) * 255).astype(np.uint8))

    @classmethod
    def of(cls, box, pixels: np.ndarray) -> StoredMask:
        """(h, w) uint8 pixels over `box`, compressed."""
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        return cls(tuple(int(v) for v in box), (int(pixels.shape[0]), int(pixels.shape[1])),
                   zlib.compress(pixels.tobytes()))

    def pixels(self) -> np.ndarray:
        """The (h, w) uint8 mask (read-only). Raises ValueError for data that is not such a mask."""
        try:
            raw = zlib.decompress(self.data)
        except zlib.error as exc:
            raise ValueError(f"stored occluder mask: {exc}") from exc
        if len(raw) != self.shape[0] * self.shape[1]:
            raise ValueError(f"stored occluder mask: {len(raw)} bytes for a {self.shape} mask")
        return np.frombuffer(raw, np.uint8).reshape(self.shape)


class MaskStore(Mapping[int, StoredMask]):
    """Source frame -> its `StoredMask`, the compressed bytes in an anonymous temp file in `folder` (the run's
    output folder, as the moments' spill; None: `TMPDIR`, which may be memory on a tmpfs). One thread puts (the
    face pass's masker: in order, and again for a few earlier frames whose masks grow); others read frames already
    put. Putting a frame again replaces its mask (the old bytes stay unused in the file: a few frames' worth)."""

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = folder
        self._lock = threading.Lock()
        self._file = None  # opened on the first put
        self._end = 0
        self._rows = np.full(0, -1, np.int64)  # source index -> row, -1: no mask
        self._records = np.zeros((0, 8), np.int64)  # row -> offset, length, box (4), shape (2)
        self._count = 0

    # ------------------------------------------------------------------------------------------ Mapping

    def __getitem__(self, index: int) -> StoredMask:
        row = self._row(index)
        if row < 0:
            raise KeyError(index)
        offset, length, *geometry = (int(v) for v in self._records[row])
        data = os.pread(self._file.fileno(), length, offset)
        if len(data) != length:
            raise OSError(f"occluder mask store: {len(data)} of {length} bytes read back for frame {index}")
        return StoredMask(tuple(geometry[:4]), tuple(geometry[4:]), data)

    def __contains__(self, index) -> bool:
        return self._row(index) >= 0

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self._count

    def indices(self) -> np.ndarray:
        """The masked source frames, ascending."""
        return np.flatnonzero(self._rows >= 0)

    # ------------------------------------------------------------------------------------------ writing

    def put(self, index: int, stored: StoredMask) -> None:
        """Keep `stored` as frame `index`'s mask (replacing one put before)."""
        with self._lock:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix=".latentsync-masks-", dir=self.folder)
            offset = self._end
            written = os.pwrite(self._file.fileno(), stored.data, offset)
            if written != len(stored.data):  # a short write to a file: the disk (or quota) is full
                raise OSError(errno.ENOSPC, f"no space left for the occluder masks ({written} of "
                              f"{len(stored.data)} bytes written)", str(self.folder or tempfile.gettempdir()))
            self._end += written
            record = (offset, written, *stored.box, *stored.shape)
            row = self._row(index)
            if row >= 0:
                self._records[row] = record
            else:
                self._add_row(int(index), record)

    def _row(self, index) -> int:
        index = int(index)
        return int(self._rows[index]) if 0 <= index < len(self._rows) else -1

    def _add_row(self, index: int, record: tuple) -> None:
        """A new frame's record; its row is published last, so a reader never sees a row without its record."""
        if index >= len(self._rows):  # grow by doubling: amortized constant per frame
            rows = np.full(max(2 * len(self._rows), index + 1, 64), -1, np.int64)
            rows[:len(self._rows)] = self._rows
            self._rows = rows
        if self._count == len(self._records):
            records = np.zeros((max(2 * self._count, 64), 8), np.int64)
            records[:self._count] = self._records[:self._count]
            self._records = records
        self._records[self._count] = record
        self._rows[index] = self._count
        self._count += 1

    # ------------------------------------------------------------------------------------------ packing

    def packed(self, chunk_bytes: int | None = None) -> tuple[dict[str, np.ndarray], Iterator[bytearray]]:
        """(arrays, chunks): per mask in frame order its frame index, box, stored shape and its offset into the
        masks' bytes laid end to end (`occluder_offsets`, one more than masks), and those bytes as consecutive
        chunks of at most `chunk_bytes` (None: one chunk; a mask larger than that is a chunk of its own), read from
        the file as the iterator is consumed."""
        order = self.indices()
        rows = self._rows[order]
        records = self._records[rows] if len(rows) else np.zeros((0, 8), np.int64)
        lengths = records[:, 1]
        arrays = {"occluder_index": order.astype(np.int64), "occluder_box": records[:, 2:6].copy(),
                  "occluder_shape": records[:, 6:8].copy(),
                  "occluder_offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)}
        return arrays, self._chunks(order, chunk_bytes)

    def _chunks(self, order: np.ndarray, chunk_bytes: int | None) -> Iterator[bytearray]:
        """The masks' bytes of `order` in chunks (each a new bytearray, so a caller may wrap it without a copy)."""
        pending, size = [], 0
        for index in order.tolist():
            data = self[index].data
            if pending and chunk_bytes is not None and size + len(data) > chunk_bytes:
                chunk = bytearray().join(pending)
                pending, size = [], 0
                yield chunk
            pending.append(data)
            size += len(data)
        if pending:
            yield bytearray().join(pending)

    @classmethod
    def unpacked(cls, arrays: Mapping[str, np.ndarray], chunks: Iterable, num_frames: int,
                 folder: str | os.PathLike | None = None) -> MaskStore:
        """The store `packed` described: `arrays` as it gave them, `chunks` the masks' bytes end to end in any
        split (anything `bytes()` takes), kept in `folder`. Every mask is checked to decompress to its shape; raises
        ValueError when anything does not add up."""
        index, box, shape, offsets = (np.asarray(arrays[k]) for k in
                                      ("occluder_index", "occluder_box", "occluder_shape", "occluder_offsets"))
        count = len(index)
        fits = offsets.shape == (count + 1,) and box.shape == (count, 4) and shape.shape == (count, 2)
        if not fits or offsets[0] != 0 or (np.diff(offsets) < 1).any() or (shape < 1).any() \
                or ((index < 0) | (index >= num_frames)).any() or len(set(index.tolist())) < count:
            raise ValueError("the packed occluder masks do not add up")
        store, k, buffer, at = cls(folder), 0, b"", 0
        for chunk in chunks:
            buffer, at = buffer[at:] + bytes(chunk), 0
            while k < count and len(buffer) - at >= offsets[k + 1] - offsets[k]:
                end = at + int(offsets[k + 1] - offsets[k])
                stored = StoredMask(tuple(int(v) for v in box[k]), (int(shape[k][0]), int(shape[k][1])), buffer[at:end])
                try:
                    stored.pixels()
                except ValueError as exc:  # bytes that are not this mask
                    raise ValueError(f"the packed occluder masks do not add up (frame {index[k]}: {exc})") from exc
                store.put(int(index[k]), stored)
                at, k = end, k + 1
        if k != count or at != len(buffer):
            raise ValueError("the packed occluder masks do not add up (bytes missing or left over)")
        return store

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
