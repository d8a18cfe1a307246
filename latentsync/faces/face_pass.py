"""The face pass streamed along the output: the inference pipeline's frames and faces, small state only.

`ChunkSource` yields, for each output chunk, the source frames and their aligned faces. Along the first
traversal of the video the face pass itself (`VideoFaceProcessor`: detection, tracking, smoothing, gap
bridging, the official nose smoothing in source order) supplies the frames and crops, so each of those
frames is decoded once. What it keeps of every frame is the small `AlignmentTrack` (a 2x3 matrix and two
flags); frames shown again later (ping-pong, loop) are decoded again and re-warped from those matrices, as the
official reuses its alignment. No face crop or frame of the whole video is ever held in memory.

A finished face pass can be kept (`ChunkSource.prepared()`, a `PreparedFaces`) and given to a later run on the
same video (`prepared=`): that run does no face pass at all, every frame takes the path of frames shown again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import torch

from latentsync.errors import NoFaceError
from latentsync.utils.media import VideoReader
from latentsync.utils.progress import RunProgress, StageClock

from .alignment import AlignRestore
from .blend import edit_weights
from .choice import FaceChoice
from .occlusion import OccluderMasker
from .prepared import PreparedFaces
from .settings import OcclusionSettings
from .video import AlignedFrame, AlignmentTrack, VideoFaceProcessor


@dataclass
class Chunk:
    """One output chunk: output/source indices, the decoded source frames, which have a face, their crops."""

    output_indices: np.ndarray
    source_indices: np.ndarray
    frames: np.ndarray  # (n, H, W, 3) uint8, writable, owned by this chunk
    has_face: np.ndarray  # (n,) bool
    faces: torch.Tensor | None  # (n_faced, 3, R, R) uint8 crops of the frames with a face
    weights: np.ndarray  # (n,) share of the edit each frame keeps: fades where editing starts or stops (blend.py)
    occluder_jobs: tuple[Future, ...] = ()  # the masker's searches this chunk's occluders still wait on

    def wait_for_occluders(self) -> None:
        """Until the occluders of this chunk's frames are final in the track. The masker may still be reading its
        frames before that: edit them in place only afterwards (`FrameFinisher` does)."""
        for job in self.occluder_jobs:
            job.result()


class ChunkSource:
    """Iterate the output chunks of a video for a frame `schedule` (output index -> source index).

    The face pass advances only as far as the current chunk needs, so it runs beside the networks instead of
    before them. `clock` receives "faces" (decode + detect + align along the first traversal) and "decode"
    (re-reading and re-warping frames shown again). `device` is where warping and pasting back run: the
    model's CUDA device when there is one (as the official pipeline), else the CPU. `face_choice`: which face
    (`latentsync.faces.choice.resolve_face_choice`; None: the faces config's); `progress` is a bool or a
    RunProgress. `fade_frames`: edits fade in and out over this many output frames (the face pass looks that far
    ahead; None: the faces config's `blend.fade_frames`). `occlusion`: auto | hands | off (None: the faces
    config's): occluders in front of the mouth are found along the face pass (`OccluderMasker`, reset at shot
    cuts; in a thread of its own, frames in order) and kept per source frame in the track. A chunk may be handed
    out before its occluders are in (the masker trails by one chunk at most, so the face pass does not stop at
    every chunk's end to wait for it): `Chunk.wait_for_occluders()` before editing its frames. The faces config
    is the detector's (configs/faces.yaml without one). `face_frames`: how many source frames the face pass
    covers (None: those the schedule shows; give the video's frame count to make `prepared()` reusable by any
    later schedule): frames past the schedule's are aligned after the last chunk. `prepared`: a finished face
    pass of this video (`PreparedFaces`); then no face pass runs (no detector, occluder or cut search) and its
    track and cuts are used.
    """

    def __init__(self, video_path: str, schedule: np.ndarray, chunk_size: int, resolution: int, fps: float,
                 detector=None, clock: StageClock | None = None, progress=True, device="cpu",
                 face_choice: FaceChoice | None = None, fade_frames: int | None = None, occlusion: str | None = None,
                 face_frames: int | None = None, prepared: PreparedFaces | None = None, mask_folder=None):
        self.video_path = str(video_path)
        self.schedule = np.asarray(schedule, dtype=np.int64)
        self.chunk_size = chunk_size
        self.fps = fps
        self.clock = clock or StageClock()
        self.progress = RunProgress.of(progress)
        self.frames_needed = int(self.schedule.max()) + 1 if len(self.schedule) else 0  # what the schedule shows
        self.processor = VideoFaceProcessor(resolution=resolution, detector=detector, face_choice=face_choice)
        self.needs_a_face = face_choice is None or not face_choice.edits_nobody  # else every frame passes through
        said = face_choice.report if face_choice is not None else ()
        self.choice_report = prepared.report if prepared is not None else said  # what the face choice said
        if torch.device(device).type == "cuda":  # detection stays where the detector is; warp + restore move
            self.processor.restorer = AlignRestore(resolution=resolution, device=torch.device(device))
        self.occlusion = occlusion or self.processor.config.occlusion.mode
        self.masker: OccluderMasker | None = None  # made when the face pass starts (it holds the hand models)
        self._occluder_track = None
        self._masking: ThreadPoolExecutor | None = None  # the masker's own thread, beside the face pass
        self._occluder_jobs: deque[tuple[int, Future]] = deque()  # (source index, its masker job), in order
        self._occluders_handed_out = 0  # the masker's jobs up to here belong to chunks handed out
        self._masked: deque[int] = deque(maxlen=self.processor.config.occlusion.look_back + 1)  # its last frames
        self.replayed = prepared is not None  # True: the face pass was done before, nothing is detected here
        if prepared is not None:
            prepared.check_fits(self.processor, self.frames_needed, self.occlusion)
            self.track = prepared.track(self.processor)
        else:
            self.track = AlignmentTrack.empty(max(self.frames_needed, int(face_frames or 0)), self.processor,
                                              mask_folder)
        self.num_source_frames = len(self.track.has_face)  # the face pass covers frames 0 .. num_source_frames-1
        self.aligned_upto = self.num_source_frames if self.replayed else 0  # frames the face pass has settled
        fade_frames = self.processor.config.blend.fade_frames if fade_frames is None else fade_frames
        self.fade_frames = max(int(fade_frames), 0)
        self._held: dict[int, AlignedFrame] = {}  # face-pass results not yet handed out (the look-ahead)
        self._first_pass_arrays: dict[int, np.ndarray] = {}  # start index -> decoded array, until handed out

    @property
    def cuts(self) -> set[int]:
        """Frames that start a shot: given by the speaker pass, or found by the face pass as it goes (live)."""
        return self.processor.cuts

    def _first_pass_frames(self, reader: VideoReader) -> Iterator[np.ndarray]:
        for start in range(0, self.num_source_frames, self.chunk_size):
            frames = reader.get_frames(range(start, min(start + self.chunk_size, self.num_source_frames)))
            self._first_pass_arrays[start] = frames
            yield frames

    def _whole_first_pass_array(self, src_idx: np.ndarray, held: dict) -> np.ndarray | None:
        """The face pass's own decoded array when this chunk is exactly that array (the usual case): no copy.

        Its frames have all been yielded by the face pass, which keeps no reference to them afterwards."""
        start = int(src_idx[0])
        frames = self._first_pass_arrays.get(start)
        if frames is None or len(frames) != len(src_idx) or not np.array_equal(src_idx, np.arange(start, start + len(frames))):
            return None
        if not all(int(s) in held and held[int(s)].frame.base is frames for s in src_idx):
            return None
        return frames

    def __iter__(self) -> Iterator[Chunk]:
        with ExitStack() as stack:
            again = stack.enter_context(VideoReader(self.video_path, target_fps=self.fps))
            face_pass, bar = self._start_face_pass(stack)
            for chunk_start in range(0, len(self.schedule), self.chunk_size):
                out_idx = np.arange(chunk_start, min(chunk_start + self.chunk_size, len(self.schedule)))
                yield self._chunk(out_idx, face_pass, again, bar)
            if face_pass is not None:
                self._complete_face_pass(face_pass, bar)

    def _start_face_pass(self, stack: ExitStack):
        """(the face pass's generator, its progress bar), both closed by `stack`; (None, None) when replayed."""
        stack.callback(self.processor.close)
        if self.replayed:
            self._check_some_face()
            return None, None
        first = stack.enter_context(VideoReader(self.video_path, target_fps=self.fps))
        self.masker = occluder_masker(self.occlusion, self.processor.config.occlusion)
        if self.masker is not None:
            stack.callback(self.masker.close)
            self._masking = ThreadPoolExecutor(max_workers=1, thread_name_prefix="occluders")
            stack.callback(self._masking.shutdown, wait=True, cancel_futures=True)  # before the masker closes
        face_pass = self.processor.process(self._first_pass_frames(first), batch_size=self.chunk_size)
        stack.callback(face_pass.close)
        bar = self.progress.stage("faces", self.num_source_frames)
        stack.callback(bar.close)
        return face_pass, bar

    def _advance(self, face_pass, upto: int, bar) -> None:
        """Run the face pass until source frame `upto` - 1 is settled, keeping what it yields in `_held`."""
        if upto <= self.aligned_upto:
            return
        with self.clock.measure("faces"):
            while self.aligned_upto < upto:
                aligned = self._settle(next(face_pass), bar)
                self._held[aligned.index] = aligned
        if self.aligned_upto >= self.frames_needed:
            self._check_some_face()

    def _complete_face_pass(self, face_pass, bar) -> None:
        """After the last chunk: align the frames past the schedule's (`face_frames`), keeping only their track,
        so that `prepared()` covers them all."""
        self._held.clear()
        with self.clock.measure("faces"):
            while self.aligned_upto < self.num_source_frames:
                self._settle(next(face_pass), bar)
                self._first_pass_arrays.clear()  # nothing is handed out any more
            self._wait_for_occluders(self.num_source_frames)

    def _settle(self, aligned: AlignedFrame, bar) -> AlignedFrame:
        """Record one frame the face pass yielded in the track; its occluder is searched in the masker's thread."""
        self.track.record(aligned)
        if self.masker is not None:
            self._occluder_jobs.append((aligned.index, self._masking.submit(self._find_occluder, aligned)))
        self.aligned_upto = aligned.index + 1
        bar.update(1)
        return aligned

    def _check_some_face(self) -> None:
        """Nothing to lip-sync when no frame the schedule shows has a face: say so instead of copying the video
        (unless the face choice edits nobody on purpose: the preview of a voice-over)."""
        if self.needs_a_face and self.frames_needed and not self.track.has_face[: self.frames_needed].any():
            raise NoFaceError(f"no face was found in any frame of {self.video_path}; nothing to lip-sync "
                              "(try another --face_detector, or a video where the face is visible)")

    def prepared(self) -> PreparedFaces | None:
        """The record of this face pass, to give a later run on the same video (`prepared=`), once it covers all
        `num_source_frames` frames; None before (or when the run stopped early)."""
        if self.aligned_upto < self.num_source_frames:
            return None
        self._wait_for_occluders(self.num_source_frames)
        return PreparedFaces.from_track(self.track, self.cuts, self.occlusion, self.choice_report)

    def _wait_for_occluders(self, upto: int) -> None:
        """Until the occluders of source frames before `upto` are in the track (called by the face pass's own
        thread only: it drops the finished jobs; a chunk's consumer waits on `Chunk.wait_for_occluders`)."""
        while self._occluder_jobs and self._occluder_jobs[0][0] < upto:
            self._occluder_jobs.popleft()[1].result()

    def _occluders_look_back(self) -> int:
        """How many frames later than a frame its occluder mask is final (`OccluderMasker.revisions`)."""
        return 0 if self.masker is None else self.processor.config.occlusion.look_back

    def _find_occluder(self, aligned: AlignedFrame) -> None:
        """The occluder in front of this frame's face, in source order (its temporal state restarts at a cut or
        with another face). Runs in the masker's own thread, one frame after the other, off the critical path."""
        if aligned.index in self.cuts or (aligned.track_id is not None and aligned.track_id != self._occluder_track):
            self.masker.reset()
        self._occluder_track = aligned.track_id if aligned.has_face else self._occluder_track
        patch = self.masker.patch(aligned.frame, aligned.face_box if aligned.has_face else None, aligned.landmarks)
        self._masked.append(aligned.index)
        if patch is not None:
            self.track.keep_occluder(aligned.index, patch.box, patch.mask)
        for back, grown in self.masker.revisions():  # an object found now, followed back: not handed out yet
            self.track.keep_occluder(self._masked[-1 - back], grown.box, grown.mask)

    def _fade_window(self, out_idx: np.ndarray) -> tuple[int, int]:
        """Output frames [lo, hi) whose faces decide this chunk's fades."""
        return max(0, int(out_idx[0]) - self.fade_frames), min(len(self.schedule), int(out_idx[-1]) + 1 + self.fade_frames)

    def _edit_weights(self, out_idx: np.ndarray) -> np.ndarray:
        lo, hi = self._fade_window(out_idx)
        weights = edit_weights(self.track.has_face[self.schedule[lo:hi]], self.fade_frames)
        return weights[int(out_idx[0]) - lo : int(out_idx[-1]) + 1 - lo]

    def _chunk(self, out_idx: np.ndarray, face_pass, again: VideoReader, bar) -> Chunk:
        src_idx = self.schedule[out_idx]
        lo, hi = self._fade_window(out_idx)
        occluders_upto = int(src_idx.max()) + 1 + self._occluders_look_back()
        self._advance(face_pass, max(int(self.schedule[lo:hi].max()) + 1, min(occluders_upto, self.num_source_frames)), bar)
        held = self._held
        shape = (self.processor.restorer.resolution,) * 2
        frames = [None] * len(src_idx)
        crops: list[torch.Tensor | None] = [None] * len(src_idx)
        for j, s in enumerate(src_idx):
            if int(s) in held:
                frames[j] = held[int(s)].frame
                crops[j] = held[int(s)].face
        again_pos = [j for j, f in enumerate(frames) if f is None]
        if again_pos:
            with self.clock.measure("decode"):
                decoded = again.get_frames(src_idx[again_pos])
                faced = [k for k, j in enumerate(again_pos) if self.track.has_face[src_idx[j]]]
                warped = self.track.warp(decoded[faced], src_idx[np.asarray(again_pos)[faced]]) if faced else None
                for k, j in enumerate(again_pos):
                    frames[j] = decoded[k]
                for n, k in enumerate(faced):
                    crops[again_pos[k]] = warped[n]
        with self.clock.measure("faces"):
            self._wait_for_occluders(self._occluders_handed_out)  # the masker trails by one chunk at most
        jobs = tuple(job for index, job in self._occluder_jobs if index < occluders_upto)
        self._occluders_handed_out = max(self._occluders_handed_out, occluders_upto)
        has_face = self.track.has_face[src_idx].copy()
        faces = torch.stack([crops[j] for j in np.flatnonzero(has_face)]) if has_face.any() else None
        if faces is not None and faces.shape[-2:] != shape:  # pragma: no cover - guarded by VideoFaceProcessor
            raise RuntimeError(f"aligned faces have shape {tuple(faces.shape)}, expected {shape}")
        whole = self._whole_first_pass_array(src_idx, held)
        handed_out = min(self.aligned_upto, int(src_idx.max()) + 1)
        for start in [k for k in self._first_pass_arrays if k + self.chunk_size <= handed_out]:
            del self._first_pass_arrays[start]  # fully handed out: the chunk (or its copy) owns the frames now
        # Keep only the look-ahead: frames past this chunk, never handed out (those handed out may be edited in place).
        self._held = {index: aligned for index, aligned in held.items() if index > int(src_idx.max())}
        # Otherwise the frames are copied once into a fresh array; restore writes into it in place.
        return Chunk(out_idx, src_idx, whole if whole is not None else np.stack(frames), has_face, faces,
                     self._edit_weights(out_idx), jobs)


def occluder_masker(mode: str | None, settings: OcclusionSettings) -> OccluderMasker | None:
    """The face pass's occluder finder for `mode` (None: the settings' own `mode`); None when off."""
    mode = mode or settings.mode
    return None if mode == "off" else OccluderMasker(mode, settings)


def track_faces(reader: VideoReader, num_frames: int, resolution: int, detector=None, chunk_size: int = 16,
                progress: bool = True) -> AlignmentTrack:
    """Align source frames 0 .. num_frames-1 of `reader` (streamed), returning their AlignmentTrack."""
    processor = VideoFaceProcessor(resolution=resolution, detector=detector)
    track = AlignmentTrack.empty(num_frames, processor)

    def chunks():
        for start in range(0, num_frames, chunk_size):
            yield reader.get_frames(range(start, min(start + chunk_size, num_frames)))

    bar = RunProgress.of(progress).stage("faces", num_frames)
    for aligned in processor.process(chunks(), batch_size=chunk_size):
        track.record(aligned)
        bar.update(1)
        del aligned  # its frame is a view of a whole decoded chunk: don't pin it while the next batch is aligned
    bar.close()
    return track
