"""A finished face pass as data: prepare a video once, lip-sync it to many audio tracks.

`PreparedFaces` is everything inference needs after the face pass over source frames 0 .. num_frames-1: the
`AlignmentTrack` arrays (matrices, flags, landmark boxes, alignment points, track ids), the occluder masks, the
shot cuts, the face pass's counts and what its face choice said (the speaker shot table).
`ChunkSource(..., prepared=record)` then runs no face pass at all: every frame is decoded and re-warped from the
recorded matrices, the path frames shown again take in a normal run, and that crop equals the face pass's own bit
for bit (tests/test_prepared_faces.py). `to_tensors` / `from_tensors` turn it into named tensors plus a JSON-able
dict (`latentsync.utils.content_cache.EntryCache`) and back exactly; the occluder masks (compressed, `StoredMask`, kept on disk by a `MaskStore`) are packed into flat
tensors with offsets, nothing is pickled. The reuse cache takes the masks' bytes apart, in chunks
(`mask_chunks`, `from_tensors(..., mask_chunks=)`), so that a long video's masks are never all in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from .stored_masks import MaskStore
from .video import AlignmentTrack, VideoFaceProcessor, VideoFaceStats

# Bump when the fields change: older records are refused (and recomputed by the caller). 2: occluder masks compressed.
PREPARED_FORMAT = 2
STAT_NAMES = ("frames", "with_face", "without_face", "bridged", "detector_runs")
# name -> (dtype, shape after the frame axis) of the per-frame arrays
FRAME_ARRAYS = {"matrices": (np.float32, (2, 3)), "has_face": (np.bool_, ()), "bridged": (np.bool_, ()),
                "boxes": (np.float32, (4,)), "points3": (np.float32, (3, 2)), "track_ids": (np.int64, ())}


class PreparedFacesError(ValueError):
    """A face-pass record that does not fit this run (another format, resolution, coverage) or is malformed."""


@dataclass(frozen=True, eq=False)
class PreparedFaces:
    """The face pass over source frames 0 .. num_frames-1 (arrays are read-only copies, indexed by source frame).

    `occlusion`: the occluder mode the pass ran with (auto | hands | off), since the occluders are part of the
    result; `face_size`: the restorer's (w, h) crop the matrices map into, which `resolution` alone does not
    pin down across versions; `stats`: `VideoFaceStats.as_dict()` of the pass; `report`: the lines its face
    choice said (`FaceChoice.report`), for a replay to say again."""

    num_frames: int
    resolution: int
    face_size: tuple[int, int]
    occlusion: str
    cuts: tuple[int, ...]
    stats: dict
    matrices: np.ndarray  # (N, 2, 3) float32 image -> crop
    has_face: np.ndarray  # (N,) bool
    bridged: np.ndarray  # (N,) bool
    boxes: np.ndarray  # (N, 4) float32 landmark boxes, NaN without a face
    points3: np.ndarray  # (N, 3, 2) float32, NaN without a face
    track_ids: np.ndarray  # (N,) int64, -1 without a face
    occluders: MaskStore  # source index -> its occluder mask (on disk; shared with the tracks made from it)
    report: tuple[str, ...] = ()

    @classmethod
    def from_track(cls, track: AlignmentTrack, cuts, occlusion: str, report=()) -> PreparedFaces:
        """The record of a finished face pass (`track` covers all its frames; the arrays are copied)."""
        arrays = {name: _frozen(getattr(track, name)) for name in FRAME_ARRAYS}
        return cls(num_frames=len(track.has_face), resolution=int(track.resolution),
                   face_size=tuple(int(v) for v in track.processor.restorer.face_size), occlusion=str(occlusion),
                   cuts=tuple(sorted(int(c) for c in cuts)), stats=dict(track.stats.as_dict()),
                   occluders=track.occluders, report=tuple(str(line) for line in report), **arrays)

    # ------------------------------------------------------------------------------------------ use

    def check_fits(self, processor: VideoFaceProcessor, frames_needed: int, occlusion: str) -> None:
        """Refuse a record that would not give this run's output: too few frames, another crop or occluder mode."""
        if frames_needed > self.num_frames:
            raise PreparedFacesError(f"the prepared face pass covers source frames 0..{self.num_frames - 1}, but "
                                     f"this run shows frames up to {frames_needed - 1}; run the face pass again")
        face_size = tuple(int(v) for v in processor.restorer.face_size)
        if (self.resolution, self.face_size) != (processor.resolution, face_size):
            raise PreparedFacesError(f"the prepared face pass aligned {self.face_size} crops at resolution "
                                     f"{self.resolution}; this run needs {face_size} at {processor.resolution}")
        if occlusion != self.occlusion:
            raise PreparedFacesError(f"the prepared face pass ran with occlusion {self.occlusion!r}, this run asks "
                                     f"for {occlusion!r}")

    def track(self, processor: VideoFaceProcessor) -> AlignmentTrack:
        """A fresh, writable AlignmentTrack of this record that warps and restores with `processor`, whose
        counts and cuts become the record's (as after the face pass). Its occluder masks are the record's own
        store: a run from a record searches no occluders, so it only reads them."""
        processor.stats = self._stats()
        processor.cuts = set(self.cuts)
        processor.find_cuts = False
        arrays = {name: np.array(getattr(self, name)) for name in FRAME_ARRAYS}
        return AlignmentTrack(stats=processor.stats, processor=processor, occluders=self.occluders, **arrays)

    def _stats(self) -> VideoFaceStats:
        no_face = np.flatnonzero(~self.has_face).tolist()
        return VideoFaceStats(**{name: int(self.stats[name]) for name in STAT_NAMES}, no_face_indices=no_face)

    # ------------------------------------------------------------------------------------------ storage

    def to_tensors(self, with_masks: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
        """(named tensors, JSON-able meta) holding this record exactly; `from_tensors` reads them back.
        `with_masks=False` leaves out the masks' bytes (`occluder_zlib`): they go apart, in `mask_chunks`."""
        tensors = {name: torch.from_numpy(np.array(getattr(self, name))) for name in FRAME_ARRAYS}
        tensors["cuts"] = torch.tensor(self.cuts, dtype=torch.int64).reshape(-1)
        arrays, chunks = self.occluders.packed()
        tensors.update({name: torch.from_numpy(array) for name, array in arrays.items()})
        if with_masks:
            tensors["occluder_zlib"] = torch.from_numpy(np.frombuffer(b"".join(chunks), np.uint8).copy())
        meta = {"format": PREPARED_FORMAT, "num_frames": self.num_frames, "resolution": self.resolution,
                "face_size": list(self.face_size), "occlusion": self.occlusion,
                "stats": {name: int(self.stats[name]) for name in STAT_NAMES}, "report": list(self.report)}
        return tensors, meta

    def mask_chunks(self, chunk_bytes: int) -> Iterator[bytearray]:
        """The occluder masks' bytes that `to_tensors(with_masks=False)` leaves out, in frame order, as chunks of
        at most `chunk_bytes` (whole masks), read from disk as they are consumed."""
        return self.occluders.packed(chunk_bytes)[1]

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], meta: Mapping,
                     processor: VideoFaceProcessor | None = None, mask_chunks: Iterable | None = None,
                     mask_folder=None) -> PreparedFaces:
        """The record `to_tensors` wrote (`mask_chunks`: the masks' bytes, when it left them out; they are kept in a
        temp file in `mask_folder`, `MaskStore`). Checks the format version, the meta fields, every tensor's dtype
        and shape against `num_frames`, the occluder packing (every mask decompresses to its shape), and (with
        `processor`) the resolution and crop size; raises PreparedFacesError on any mismatch."""
        meta = _checked_meta(meta)
        n = meta["num_frames"]
        arrays = {name: _checked_array(tensors, name, dtype, (n, *tail)) for name, (dtype, tail) in FRAME_ARRAYS.items()}
        cuts = _checked_array(tensors, "cuts", np.int64, (None,))
        if ((cuts < 0) | (cuts >= max(n, 1))).any():
            raise PreparedFacesError(f"prepared face pass: cuts outside frames 0..{n - 1}")
        record = cls(num_frames=n, resolution=meta["resolution"], face_size=tuple(meta["face_size"]),
                     occlusion=meta["occlusion"], cuts=tuple(int(c) for c in cuts), stats=dict(meta["stats"]),
                     report=tuple(meta["report"]), occluders=_unpack_occluders(tensors, n, mask_chunks, mask_folder),
                     **{k: _frozen(v) for k, v in arrays.items()})
        if processor is not None:
            record.check_fits(processor, 0, record.occlusion)
        return record

    def __eq__(self, other) -> bool:
        """Same meta and the same tensors, bit for bit (NaN equals NaN: boxes of face-less frames)."""
        if not isinstance(other, PreparedFaces):
            return NotImplemented
        (mine, my_meta), (theirs, their_meta) = self.to_tensors(), other.to_tensors()
        return my_meta == their_meta and mine.keys() == theirs.keys() and all(
            mine[k].dtype == theirs[k].dtype and np.array_equal(mine[k].numpy(), theirs[k].numpy(),
                                                                 equal_nan=mine[k].is_floating_point())
            for k in mine)

    __hash__ = None


def _frozen(array: np.ndarray) -> np.ndarray:
    out = np.array(array, copy=True)
    out.flags.writeable = False
    return out


def _unpack_occluders(tensors: Mapping[str, torch.Tensor], num_frames: int, mask_chunks: Iterable | None,
                       folder) -> MaskStore:
    """`MaskStore.packed`'s arrays (and the masks' bytes: `mask_chunks`, else the tensor `occluder_zlib`) back into
    a store."""
    index = _checked_array(tensors, "occluder_index", np.int64, (None,))
    count = len(index)
    arrays = {"occluder_index": index, "occluder_box": _checked_array(tensors, "occluder_box", np.int64, (count, 4)),
              "occluder_shape": _checked_array(tensors, "occluder_shape", np.int64, (count, 2)),
              "occluder_offsets": _checked_array(tensors, "occluder_offsets", np.int64, (count + 1,))}
    if mask_chunks is None:
        mask_chunks = [_checked_array(tensors, "occluder_zlib", np.uint8, (None,)).tobytes()]
    try:
        return MaskStore.unpacked(arrays, mask_chunks, num_frames, folder)
    except ValueError as exc:
        raise PreparedFacesError(f"prepared face pass: {exc}") from exc


def _checked_array(tensors: Mapping[str, torch.Tensor], name: str, dtype, shape: tuple) -> np.ndarray:
    """Tensor `name` as numpy, refused unless it has `dtype` and `shape` (None: any length)."""
    if name not in tensors:
        raise PreparedFacesError(f"prepared face pass: tensor {name!r} is missing")
    array = tensors[name].detach().cpu().numpy()
    fits = array.dtype == dtype and array.ndim == len(shape) and all(
        want is None or got == want for got, want in zip(array.shape, shape, strict=True))
    if not fits:
        raise PreparedFacesError(f"prepared face pass: tensor {name!r} is {array.dtype}{list(array.shape)}, "
                                 f"expected {np.dtype(dtype)}{[s if s is not None else 'n' for s in shape]}")
    return array


def _checked_meta(meta: Mapping) -> dict:
    if meta.get("format") != PREPARED_FORMAT:
        raise PreparedFacesError(f"prepared face pass: format {meta.get('format')!r}, this version reads "
                                 f"{PREPARED_FORMAT}")
    try:
        out = {"num_frames": int(meta["num_frames"]), "resolution": int(meta["resolution"]),
               "face_size": [int(v) for v in meta["face_size"]], "occlusion": str(meta["occlusion"]),
               "stats": {name: int(meta["stats"][name]) for name in STAT_NAMES},
               "report": meta.get("report", [])}  # absent in records written before it was kept
    except (KeyError, TypeError, ValueError) as exc:
        raise PreparedFacesError(f"prepared face pass: malformed meta ({exc!r})") from exc
    if not isinstance(out["report"], list) or not all(isinstance(line, str) for line in out["report"]):
        raise PreparedFacesError("prepared face pass: malformed meta (report must be lines of text)")
    if out["num_frames"] < 1 or len(out["face_size"]) != 2:
        raise PreparedFacesError("prepared face pass: malformed meta (num_frames or face_size)")
    return out
