"""Video -> face-track clips for SyncNet: 25 fps frames, face detection, shots, tracks, crops and audio.

The original writes every stage to disk (JPEG frames, mp4v crop videos, AAC audio) and re-reads it; here the
crops and the audio slice stay in memory, which avoids two lossy re-encodings (see docs/evaluation.md).
The video is decoded twice (detect, then crop) so long videos never sit in memory whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.settings import SyncNetProtocol, TrackingSettings
from eval.syncnet.features import float_to_int16_scale
from eval.syncnet.tracking import BoxTrack, crop_face, smooth_track, track_faces
from latentsync.errors import InputError

logger = logging.getLogger(__name__)

DECODE_CHUNK = 8  # frames decoded at once (full-resolution frames are large)


class SyncEvalError(InputError):
    """A video cannot be scored; the message says why and what to do."""


class NoFaceError(SyncEvalError):
    """No usable face track in the video."""


class VideoTooShortError(SyncEvalError):
    """The video is shorter than the minimum face-track length."""


@dataclass
class TrackClip:
    """One face track ready for SyncNet: BGR crops (n, 224, 224, 3) and the int16-scale audio they span."""

    track: BoxTrack
    crops_bgr: np.ndarray
    audio_int16: np.ndarray


def detect_shots(video_path: str | Path, num_frames: int, fps: float) -> list[tuple[int, int]]:
    """Shot boundaries as [start, end) frame ranges at `fps` (PySceneDetect ContentDetector defaults)."""
    from scenedetect import ContentDetector, detect

    scenes = detect(str(video_path), ContentDetector())
    if not scenes:
        return [(0, num_frames)]
    bounds = [(round(start.seconds * fps), round(end.seconds * fps)) for start, end in scenes]
    bounds[-1] = (bounds[-1][0], num_frames)
    return [(max(0, a), min(num_frames, b)) for a, b in bounds if b > a]


class FaceTrackExtractor:
    """syncnet_python's run_pipeline as a library call: `extractor(video_path) -> list[TrackClip]`."""

    def __init__(self, detector, settings: TrackingSettings, protocol: SyncNetProtocol):
        self.detector = detector
        self.settings = settings
        self.protocol = protocol

    def __call__(self, video_path: str | Path) -> list[TrackClip]:
        from latentsync.utils.media import VideoReader, read_audio

        reader = VideoReader(video_path, target_fps=self.protocol.fps)
        num_frames = len(reader)
        min_track = self.settings.min_track
        if num_frames <= min_track:
            raise VideoTooShortError(
                f"{video_path}: {num_frames} frames at {self.protocol.fps} fps ({num_frames / self.protocol.fps:.2f} s) "
                f"is too short: a face track needs more than {min_track} frames "
                f"({min_track / self.protocol.fps:.1f} s). Use a longer clip (or lower tracking.min_track)."
            )
        audio = float_to_int16_scale(read_audio(video_path, self.protocol.sample_rate))
        detections = [self.detector(frame) for chunk in reader.iter_chunks(DECODE_CHUNK) for frame in chunk]
        frames_with_faces = sum(len(d) > 0 for d in detections)
        detector_name = getattr(self.detector, "name", type(self.detector).__name__)
        if frames_with_faces == 0:
            raise NoFaceError(f"no face detected in {video_path} (detector: {detector_name}, {num_frames} frames)")
        shots = detect_shots(video_path, num_frames, self.protocol.fps) if self.settings.scene_detection else [
            (0, num_frames)
        ]
        tracks = []
        for start, end in shots:
            if end - start >= min_track:
                tracks += track_faces(detections[start:end], start, self.settings)
        if not tracks:
            raise NoFaceError(
                f"no usable face track in {video_path}: faces found in {frames_with_faces} of {num_frames} frames "
                f"(detector: {detector_name}), but no track has more than {min_track} linked detections within one "
                f"shot with a mean face size above {self.settings.min_face_size:g} px"
            )
        logger.info("%s: %d face track(s) from %d shot(s)", video_path, len(tracks), len(shots))
        return self._crop_tracks(reader, tracks, audio)

    def _crop_tracks(self, reader, tracks: list[BoxTrack], audio: np.ndarray) -> list[TrackClip]:
        windows = [smooth_track(track, self.settings.smooth_kernel) for track in tracks]
        crops = [[] for _ in tracks]
        needed = np.unique(np.concatenate([track.frames for track in tracks]))
        for begin in range(0, len(needed), DECODE_CHUNK):
            indices = needed[begin : begin + DECODE_CHUNK]
            for frame_index, frame_rgb in zip(indices, reader.get_frames(indices), strict=True):
                frame_bgr = np.ascontiguousarray(frame_rgb[..., ::-1])
                for k, (track, window) in enumerate(zip(tracks, windows, strict=True)):
                    if track.start <= frame_index <= track.end:
                        i = frame_index - track.start
                        crops[k].append(
                            crop_face(frame_bgr, window.size[i], window.x[i], window.y[i], self.settings,
                                      self.protocol.crop_size)
                        )
        spf = self.protocol.samples_per_frame
        return [
            TrackClip(track, np.stack(track_crops), audio[track.start * spf : (track.end + 1) * spf])
            for track, track_crops in zip(tracks, crops, strict=True)
        ]
