"""The writer thread's work on each chunk: paste the generated faces back, keep occluders, fade edges, draw overlays.

`FrameFinisher(chunk, decoded)` turns a chunk's source frames into its output frames in place:
1. paste back: the official `AlignRestore` blend of each generated face into its frame;
2. occluders: where the face pass found something in front of the mouth (`OccluderMasker`, kept per source frame
   in the track), the original pixels stay;
3. fades: frames next to an unedited frame keep only part of the edit (`chunk.weights`, latentsync/faces/blend.py);
4. the `--debug_video` companion, when asked for, gets the same frames with the face pass's decisions drawn on.
Frames without a face pass through untouched. A frame with a full weight and no occluder is exactly the official
paste-back.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection

import numpy as np
import torch

from latentsync.faces.blend import blend_edit
from latentsync.faces.face_pass import Chunk
from latentsync.faces.overlay import FrameFacts, draw_overlay
from latentsync.faces.video import AlignmentTrack


class FrameFinisher:
    """`track`: the face pass's AlignmentTrack (alignment and occluders per source frame); `overlay`: a VideoWriter
    for the debug video or None; `cuts`: first source frame of every shot after the first; `keep_mask`: the official
    (R, R) mouth mask (1 = keep), drawn in the debug video."""

    def __init__(self, track: AlignmentTrack, overlay=None, cuts: Collection[int] = (),
                 keep_mask: np.ndarray | None = None):
        self.track = track
        self.overlay = overlay
        self.cuts = cuts  # may grow while the face pass runs ahead (ChunkSource.cuts)
        self.keep_mask = keep_mask

    def __call__(self, chunk: Chunk, decoded: torch.Tensor | None) -> np.ndarray:
        """The chunk's output frames (written into `chunk.frames`). `decoded` None: nothing generated (a chunk
        without faces, or the preview), the frames stay as they are."""
        chunk.wait_for_occluders()  # the masker may still read these frames, and their occluders are used here
        frame_hw = chunk.frames.shape[1:3]
        faced = np.flatnonzero(chunk.has_face) if decoded is not None else np.zeros(0, dtype=np.int64)
        shown = range(len(chunk.frames)) if self.overlay is not None else faced  # frames whose occluder is used
        occluders = {int(j): patch for j in shown
                     if (patch := self.track.occluder(int(chunk.source_indices[j]))) is not None}
        partial = [int(j) for j in faced if j in occluders or chunk.weights[j] < 1.0]
        originals = {j: chunk.frames[j].copy() for j in partial}
        if len(faced):
            self._paste_back(chunk, faced, decoded)
        for j, original in originals.items():
            blend_edit(original, chunk.frames[j], float(chunk.weights[j]), occluders.get(j))
        if self.overlay is not None:
            self.overlay.write(np.stack([self._draw(chunk, j, occluders[j].full(frame_hw) if j in occluders else None)
                                         for j in range(len(chunk.frames))]))
        return chunk.frames

    def _paste_back(self, chunk: Chunk, faced: np.ndarray, decoded: torch.Tensor) -> None:
        if len(faced) == len(chunk.frames):
            self.track.restore(chunk.frames, decoded, chunk.source_indices, inplace=True)
        else:
            chunk.frames[faced] = self.track.restore(chunk.frames[faced], decoded, chunk.source_indices[faced],
                                                     inplace=True)

    def shot_of(self, source: int) -> tuple[int, int]:
        """(1-based shot number, frames since the shot started) of a source frame."""
        cuts = sorted(self.cuts)
        shot = bisect.bisect_right(cuts, source)
        start = cuts[shot - 1] if shot else 0
        return shot + 1, source - start

    def _draw(self, chunk: Chunk, j: int, occluder: np.ndarray | None) -> np.ndarray:
        source = int(chunk.source_indices[j])
        shot, into = self.shot_of(source)
        faced = bool(self.track.has_face[source])
        facts = FrameFacts(
            output_index=int(chunk.output_indices[j]), source_index=source, shot=shot, frames_into_shot=into,
            weight=float(chunk.weights[j]) if faced else 0.0,
            box=self.track.boxes[source] if faced else None,
            track_id=int(self.track.track_ids[source]) if faced else None,
            points3=self.track.points3[source] if faced else None,
            matrix=self.track.matrices[source] if faced else None, occluder=occluder)
        return draw_overlay(chunk.frames[j], facts, self.keep_mask, self.track.processor.restorer.face_size)
