"""Video-level face processing for the pipelines: frames in, aligned faces out, faces back into frames.

`VideoFaceProcessor.process(frames)` (or `align_video(frames)`) streams: it takes frames or chunks of frames
and yields one `AlignedFrame` per frame, in order, as soon as that frame is settled. A frame without a face is
held back for at most `gaps.max_bridge` frames: if a face comes back within that many frames, the gap is
bridged by interpolating the alignment points; otherwise those frames are yielded with `has_face=False` and
later stages pass them through untouched. At a shot cut (`cuts`: the frames that start a shot) everything
restarts: the gap before it is released unbridged, the tracker forgets its face, and the point smoother and
the official nose smoothing (`p_bias`) start over, so no frame is aligned with landmarks from another shot.
`restore(frames, faces, aligned)` pastes generated faces back,
chunk by chunk. `stats` counts frames with a face, without, and bridged. `AlignmentTrack` records only the
matrix and flags of each frame, so frames shown again later can be re-warped and pasted back without keeping
any crop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .alignment import AlignRestore
from .choice import FaceChoice
from .detector import FaceDetector
from .occlusion.geometry import OcclusionPatch
from .settings import FacesConfig, as_faces_config
from .shots import TimelineCuts, frames_after_cuts
from .smoothing import PointSmoother, interpolate_points
from .stored_masks import MaskStore, StoredMask
from .tracking import FaceTracker

FACE_PASS_FPS = 25.0  # the face pass reads the output timeline (25 fps): the cut detector's time unit


@dataclass
class AlignedFrame:
    """One video frame after face processing. Face fields are None when `has_face` is False."""

    index: int
    frame: np.ndarray  # (H, W, 3) uint8 RGB, the input frame (not copied)
    has_face: bool
    bridged: bool = False  # face-less frame whose alignment was interpolated from its neighbours
    face: torch.Tensor | None = None  # (3, R, R) uint8, the aligned crop resized as the official pipeline does
    box: list[int] | None = None  # [0, 0, w, h]: the crop size `restore` resizes the generated face back to
    affine_matrix: torch.Tensor | None = None  # (1, 2, 3) image -> crop
    points3: np.ndarray | None = None  # the 3 alignment points used (smoothed, rounded), frame pixels
    face_box: np.ndarray | None = None  # (x1, y1, x2, y2) landmark box in the frame
    score: float | None = None  # detection score of the face's track
    track_id: int | None = None
    landmarks: np.ndarray | None = None  # (N, 2) backend landmarks, frame pixels (None when bridged)


@dataclass
class VideoFaceStats:
    """Per-video counts. frames = with_face + bridged + without_face."""

    frames: int = 0
    with_face: int = 0
    without_face: int = 0
    bridged: int = 0
    detector_runs: int = 0
    no_face_indices: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("frames", "with_face", "without_face", "bridged", "detector_runs")}


@dataclass
class _Pending:
    index: int
    frame: np.ndarray
    points3: np.ndarray | None
    face_box: np.ndarray | None = None
    score: float | None = None
    track_id: int | None = None
    landmarks: np.ndarray | None = None
    bridged: bool = False
    shot_start: bool = False


def _iter_single_frames(frames: Iterable) -> Iterator[np.ndarray]:
    """Accept single (H, W, 3) frames or (N, H, W, 3) chunks (as media.iter_frames yields)."""
    for item in frames:
        array = item.numpy() if torch.is_tensor(item) else np.asarray(item)
        if array.ndim == 3:
            yield array
        elif array.ndim == 4:
            yield from array
        else:
            raise ValueError(f"expected RGB frames (H, W, 3) or chunks (N, H, W, 3), got shape {array.shape}")


def _peek_size(frames: Iterable[np.ndarray]) -> tuple[tuple[int, int] | None, Iterator[np.ndarray]]:
    """The frames' (width, height) (None when there are none) and the same frames, all of them.

    Nothing keeps the first frame once it is out: a frame is a view of its whole decoded chunk (16 frames, ~95 MB
    at 1080p), and a local or `itertools.chain`'s argument tuple would pin that chunk for the whole pass."""
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        return None, iter(())
    return (first.shape[1], first.shape[0]), _popped_then(frames, [first])


def _popped_then(rest: Iterator[np.ndarray], held: list[np.ndarray]) -> Iterator[np.ndarray]:
    """The one frame in `held` (taken out of the list as it is handed on), then `rest`."""
    yield held.pop()
    yield from rest


def resize_faces_to_box(faces: torch.Tensor, box: Sequence[int]) -> torch.Tensor:
    """(N, 3, R, R) generated faces -> (N, 3, h, w) crop size: bicubic with antialias, like torchvision's resize."""
    x1, y1, x2, y2 = box
    return F.interpolate(faces, size=(int(y2 - y1), int(x2 - x1)), mode="bicubic", antialias=True,
                         align_corners=False)


class VideoFaceProcessor:
    """Detect, track, smooth, bridge and align the faces of one video; paste generated faces back.

    `detector` is a FaceDetector (shared, e.g. across clips), a backend name, or None for the configured one.
    `config` (a `FacesConfig`; the detector's, else configs/faces.yaml) sets tracking, smoothing and gap
    bridging. `face_choice` (`latentsync.faces.choice.FaceChoice`; None: the config's choice) says which face to
    follow, and its `cuts` which frames start a new shot (`latentsync.faces.shots`; None: found here);
    tracking, smoothing and bridging restart there.

    One instance per video: the tracker, the smoother and the official nose smoothing (`p_bias`) carry state
    from frame to frame within a shot.
    """

    def __init__(self, resolution: int = 256, detector: FaceDetector | str | None = None,
                 config: FacesConfig | str | None = None, device: str = "cpu", dtype: torch.dtype = torch.float32,
                 face_choice: FaceChoice | None = None):
        self._owns_detector = not isinstance(detector, FaceDetector)
        if config is None and not self._owns_detector:
            self.config = detector.config  # a detector passed in brings its settings
        else:
            self.config = as_faces_config(config)
        if self._owns_detector:
            detector = FaceDetector(device=device, backend=detector, config=self.config)
        self.detector = detector
        self.tracker = FaceTracker(detector, config=self.config, face_choice=face_choice)
        sm = self.config.smoothing
        self.smoother = PointSmoother(sm.method, float(sm.alpha), float(sm.ema_weight))
        self.round_points = bool(sm.round_points)
        self.max_bridge = int(self.config.gaps.max_bridge)
        self.resolution = resolution
        self.restorer = AlignRestore(resolution=resolution, device=device, dtype=dtype)
        # The cuts: given (the speaker pass found them on its own frames), or found here on the frames this pass
        # decodes anyway (`shots.detect`), a few frames ahead of the tracker. Grows as the pass goes.
        cuts = None if face_choice is None else face_choice.cuts
        self.cuts: set[int] = set() if cuts is None else {int(c) for c in cuts}
        self.find_cuts = cuts is None and bool(self.config.shots.detect)
        self.stats = VideoFaceStats()
        self._last_track_id = None
        self._last_width = None

    # ------------------------------------------------------------------------------------------ align

    def process(self, frames: Iterable, batch_size: int = 16) -> Iterator[AlignedFrame]:
        """Yield an AlignedFrame per input frame, in order. Warps are batched `batch_size` frames at a time."""
        pending: deque[_Pending] = deque()  # frames not yet settled (a possible gap to bridge)
        ready: list[_Pending] = []
        last_face: _Pending | None = None
        for index, frame in self._with_cuts(_iter_single_frames(frames)):
            shot_start = index in self.cuts
            if shot_start:  # a new shot: nothing is bridged across the cut, the tracker forgets its face
                ready.extend(pending)
                pending.clear()
                last_face = None
                self.tracker.reset()
            item = self._observe(index, frame)
            item.shot_start = shot_start
            if item.points3 is None:
                pending.append(item)
                if len(pending) > self.max_bridge:  # too long to bridge: release the gap as face-less
                    ready.extend(pending)
                    pending.clear()
                    last_face = None
            else:
                if pending and last_face is not None:  # short interior gap: bridge it
                    for gap_item, pts in zip(pending, interpolate_points(last_face.points3, item.points3, len(pending)), strict=True):
                        gap_item.points3, gap_item.bridged = pts, True
                        gap_item.face_box, gap_item.track_id = last_face.face_box, last_face.track_id
                        gap_item.score = last_face.score
                ready.extend(pending)
                pending.clear()
                ready.append(item)
                last_face = item
            if len(ready) >= batch_size:
                yield from self._finish(ready)
                ready = []
        ready.extend(pending)  # a gap at the end has no right neighbour: face-less
        if ready:
            yield from self._finish(ready)
        self.stats.detector_runs = self.tracker.detector_runs

    def _with_cuts(self, frames: Iterator[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
        """(index, frame) in order, each frame's cut (if any) already in `self.cuts` when it comes out: the cut
        finder (`TimelineCuts`) runs beside the tracker, in a thread of its own (`shots.frames_after_cuts`)."""
        if not self.find_cuts:
            yield from enumerate(frames)
            return
        size, frames = _peek_size(frames)  # the finder analyses frames of this size
        if size is None:
            return
        finder = TimelineCuts(self.config.shots, size, FACE_PASS_FPS)
        yield from frames_after_cuts(frames, finder, self.cuts)

    def _observe(self, index: int, frame: np.ndarray) -> _Pending:
        tracked = self.tracker.update(frame)
        if tracked is None:
            return _Pending(index, frame, None)
        return _Pending(index, frame, tracked.points3, tracked.box, tracked.score, tracked.track_id, tracked.landmarks)

    def _settle_points(self, item: _Pending) -> np.ndarray:
        """Smoothing (restarted for a new track or after an unbridged gap) and the official rounding."""
        if item.track_id != self._last_track_id:
            self.smoother.reset()
            self._last_track_id = item.track_id
        width = float(item.face_box[2] - item.face_box[0])
        points = self.smoother(item.points3, width)
        return np.round(points) if self.round_points else points

    def _finish(self, items: list[_Pending]) -> list[AlignedFrame]:
        """Align the settled frames (one batched warp) and build their results."""
        out, with_face, matrices = [], [], []
        for item in items:
            self.stats.frames += 1
            if item.shot_start:  # smoothing of the points and of the nose (official p_bias) start over
                self.smoother.reset()
                self._last_track_id = None
                self.restorer.p_bias = None
            if item.points3 is None:
                self.stats.without_face += 1
                self.stats.no_face_indices.append(item.index)
                self.smoother.reset()
                self._last_track_id = None
                out.append(AlignedFrame(index=item.index, frame=item.frame, has_face=False))
                continue
            self.stats.bridged += int(item.bridged)
            self.stats.with_face += int(not item.bridged)
            points = self._settle_points(item)
            matrices.append(self.restorer.next_matrix(points, smooth=True))
            result = AlignedFrame(index=item.index, frame=item.frame, has_face=True, bridged=item.bridged,
                                  points3=points, face_box=item.face_box, score=item.score, track_id=item.track_id,
                                  landmarks=item.landmarks)
            with_face.append(result)
            out.append(result)
        if with_face:
            crops, matrix_t = self.restorer.warp_faces([r.frame for r in with_face], np.stack(matrices))
            crops = crops.cpu().numpy()
            w, h = self.restorer.face_size
            for k, result in enumerate(with_face):
                resized = cv2.resize(crops[k], (self.resolution, self.resolution), interpolation=cv2.INTER_LANCZOS4)
                result.face = torch.from_numpy(resized).permute(2, 0, 1).contiguous()
                result.box = [0, 0, w, h]
                result.affine_matrix = matrix_t[k : k + 1]
        return out

    # ------------------------------------------------------------------------------------------ restore

    def restore(self, frames, faces: torch.Tensor, aligned: Sequence[AlignedFrame], inplace: bool = False) -> np.ndarray:
        """Paste generated faces ((N, 3, R, R) in [-1, 1]) into their frames; face-less frames pass through.

        `aligned` are the AlignedFrame results of those frames. Returns new (N, H, W, 3) uint8 frames, or
        writes into `frames` (a writable uint8 array) with `inplace=True`, which saves a full copy per chunk.
        """
        frames = np.asarray(frames)
        if not len(frames) == len(faces) == len(aligned):
            raise ValueError(f"restore needs as many frames, faces and results; got {len(frames)}, "
                             f"{len(faces)}, {len(aligned)}")
        out = frames if inplace else frames.copy()
        keep = [k for k, a in enumerate(aligned) if a.has_face]
        if not keep:
            return out
        resized = resize_faces_to_box(faces[keep].float(), aligned[keep[0]].box)
        for j, k in enumerate(keep):
            self.restorer.restore_imgs(out[k : k + 1], resized[j : j + 1], aligned[k].affine_matrix, inplace=True)
        return out

    def close(self) -> None:
        """Release the detector if this processor created it (a detector passed in stays usable)."""
        if self._owns_detector:
            self.detector.close()


@dataclass
class AlignmentTrack:
    """Alignment of each source frame: matrices (N, 2, 3) image -> crop, has_face and bridged flags (N,), and for
    overlays and occluder search the face's landmark box (N, 4; NaN without a face), the 3 alignment points
    (N, 3, 2) and the track id (N,; -1 without a face). A few dozen bytes per frame, never a crop."""

    matrices: np.ndarray
    has_face: np.ndarray
    bridged: np.ndarray
    stats: VideoFaceStats
    processor: VideoFaceProcessor
    boxes: np.ndarray
    points3: np.ndarray
    track_ids: np.ndarray
    occluders: MaskStore = field(default_factory=MaskStore)  # source index -> its mask (`keep_occluder`), on disk

    @classmethod
    def empty(cls, num_frames: int, processor: VideoFaceProcessor, mask_folder=None) -> AlignmentTrack:
        """A track of `num_frames` frames without a face yet; occluder masks go to a temp file in `mask_folder`."""
        return cls(np.zeros((num_frames, 2, 3), dtype=np.float32), np.zeros(num_frames, dtype=bool),
                   np.zeros(num_frames, dtype=bool), processor.stats, processor,
                   np.full((num_frames, 4), np.nan, dtype=np.float32), np.full((num_frames, 3, 2), np.nan, np.float32),
                   np.full(num_frames, -1, dtype=np.int64), MaskStore(mask_folder))

    def record(self, aligned: AlignedFrame) -> None:
        if aligned.has_face:
            self.matrices[aligned.index] = aligned.affine_matrix.reshape(2, 3).cpu().numpy()
            self.has_face[aligned.index] = True
            self.bridged[aligned.index] = aligned.bridged
            self.boxes[aligned.index] = aligned.face_box
            self.points3[aligned.index] = aligned.points3
            self.track_ids[aligned.index] = -1 if aligned.track_id is None else aligned.track_id

    def keep_occluder(self, index: int, box: tuple[int, int, int, int], mask: np.ndarray) -> None:
        """Remember frame `index`'s occluder mask (float in [0, 1] over `box`) for every time the frame is shown.

        Kept small (`StoredMask.of_mask`: ~3.4 kB per occluded frame instead of a full-frame float mask) and on
        disk (`MaskStore`), so memory does not grow with the occluded frames."""
        self.occluders.put(index, StoredMask.of_mask(box, mask))

    def occluder(self, index: int) -> OcclusionPatch | None:
        """Frame `index`'s occluder mask over its box (float32, 1 = keep the original pixel), or None. Only the box:
        a full-frame float mask is 8 MB at 1080p, for each frame of a chunk in flight."""
        stored = self.occluders.get(index)
        if stored is None:
            return None
        x0, y0, x1, y1 = stored.box
        mask = cv2.resize(stored.pixels(), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR) / 255.0
        return OcclusionPatch(stored.box, mask.astype(np.float32))

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

    def restore(self, frames: np.ndarray, faces: torch.Tensor, source_indices: np.ndarray,
                inplace: bool = False) -> np.ndarray:
        """Paste generated (n, 3, R, R) faces in [-1, 1] back into `frames` (in place, or a new array)."""
        w, h = self.processor.restorer.face_size
        resized = resize_faces_to_box(faces.float(), [0, 0, w, h])
        return self.processor.restorer.restore_imgs(frames, resized, self.matrices[source_indices], inplace=inplace)


def align_video(frames: Iterable, resolution: int = 256, detector: str | FaceDetector | None = None,
                config: FacesConfig | str | None = None, device: str = "cpu",
                batch_size: int = 16) -> Iterator[AlignedFrame]:
    """Convenience generator: `for r in align_video(iter_frames(path)): ...` (one AlignedFrame per frame)."""
    processor = VideoFaceProcessor(resolution=resolution, detector=detector, config=config, device=device)
    try:
        yield from processor.process(frames, batch_size=batch_size)
    finally:
        processor.close()
