"""The inference pipeline's face pass: align every source frame once, keep only the small per-frame results.

The first pass streams the video through `FaceTrackProcessor` (detection, tracking, smoothing, gap bridging,
the official nose smoothing in source order) and keeps just the alignment matrix and flags of each frame.
The generation pass then re-warps the frames it needs from those matrices — so no face crop of the whole
video is ever held in memory, and ping-pong/loop playback reuses the same alignment, as the official does.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from latentsync.utils.face_video import FaceTrackProcessor, FaceTrackStats, resize_faces_to_box
from latentsync.utils.media import VideoReader


@dataclass
class FaceTrack:
    """Alignment of each source frame: matrices (N, 2, 3) image -> crop, has_face and bridged flags (N,)."""

    matrices: np.ndarray
    has_face: np.ndarray
    bridged: np.ndarray
    stats: FaceTrackStats
    processor: FaceTrackProcessor

    @property
    def resolution(self) -> int:
        return self.processor.resolution

    def warp(self, frames: np.ndarray, source_indices: np.ndarray) -> torch.Tensor:
        """(n, 3, R, R) uint8 aligned faces of `frames` (which show `source_indices`), as the official crop."""
        crops, _ = self.processor.restorer.warp_faces(frames, self.matrices[source_indices])
        crops = crops.cpu().numpy()
        size = (self.resolution, self.resolution)
        faces = [cv2.resize(c, size, interpolation=cv2.INTER_LANCZOS4) for c in crops]
        return torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).contiguous()

    def restore(self, frames: np.ndarray, faces: torch.Tensor, source_indices: np.ndarray) -> np.ndarray:
        """Paste generated (n, 3, R, R) faces in [-1, 1] back into `frames` (a new array is returned)."""
        w, h = self.processor.restorer.face_size
        resized = resize_faces_to_box(faces.float(), [0, 0, w, h])
        return self.processor.restorer.restore_imgs(frames, resized, self.matrices[source_indices])


def track_faces(reader: VideoReader, num_frames: int, resolution: int, detector=None, chunk_size: int = 16,
                progress: bool = True) -> FaceTrack:
    """Align source frames 0 .. num_frames-1 of `reader` (streamed), returning their FaceTrack."""
    processor = FaceTrackProcessor(resolution=resolution, detector=detector)
    matrices = np.zeros((num_frames, 2, 3), dtype=np.float32)
    has_face = np.zeros(num_frames, dtype=bool)
    bridged = np.zeros(num_frames, dtype=bool)

    def chunks():
        for start in range(0, num_frames, chunk_size):
            yield reader.get_frames(range(start, min(start + chunk_size, num_frames)))

    bar = tqdm(total=num_frames, desc="detecting faces", unit="frame", disable=not progress)
    for aligned in processor.process(chunks(), batch_size=chunk_size):
        if aligned.has_face:
            matrices[aligned.index] = aligned.affine_matrix.reshape(2, 3).cpu().numpy()
            has_face[aligned.index] = True
            bridged[aligned.index] = aligned.bridged
        bar.update(1)
    bar.close()
    return FaceTrack(matrices, has_face, bridged, processor.stats, processor)
