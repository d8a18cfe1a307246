"""See before a long run which face will be edited: the face pass alone over the first seconds, drawn as a video.

`preview_faces` runs exactly the face pass a lip-sync run would (shots, face choice, tracking, smoothing,
occluders, fades) over the first `seconds` of the video, without any network, and writes the frames with the
overlay of `latentsync/faces/overlay.py`: shot banners, the edited face's box and track id, the alignment points,
the regenerated mouth region, kept occluders, and frames that pass through. The app's "Preview" button calls it.

Where a run stops before its face pass because `speaker` hears a voice no visible face speaks (a voice-over,
`NoSpeakerError`), the preview still shows the video: every frame passes through (nothing would be edited), with
the speaker pass's shots, and its summary gives the candidates, the shot table and why a run would stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentsync.errors import NoSpeakerError
from latentsync.faces.choice import resolve_face_choice
from latentsync.faces.face_pass import ChunkSource
from latentsync.faces.settings import load_faces_config
from latentsync.pipelines.conditioning import load_fixed_mask
from latentsync.pipelines.frame_finisher import FrameFinisher
from latentsync.utils.media import VideoWriter, frame_map, probe_video
from latentsync.utils.progress import RunProgress


@dataclass(frozen=True)
class PreviewResult:
    """The preview video and what the face pass found in it. `said`: what the face choice reported (the speaker
    pass's candidates and shot table, fallbacks); `stop`: why a run would stop before editing anything (None: it
    would not)."""

    path: Path
    num_frames: int
    frames_with_face: int
    said: tuple[str, ...] = ()
    stop: str | None = None

    def summary(self) -> str:
        lines = [f"preview {self.path}: {self.num_frames} frames, a face to edit in {self.frames_with_face}, "
                 f"{self.num_frames - self.frames_with_face} would pass through unchanged", *self.said]
        if self.stop is not None:
            lines.append(f"a lip-sync run with these settings would stop here (exit 2, no output): {self.stop}")
        return "\n".join(lines)


def preview_faces(video_path: str, out_path: str, seconds: float = 5.0, fps: int = 25, resolution: int = 256,
                  chunk_size: int = 16, detector=None, face_choice: str | None = None, face_index: int | None = None,
                  face_position=None, occlusion: str | None = None, progress=False) -> PreviewResult:
    """Write the face pass's decisions over the first `seconds` of `video_path` to `out_path` (H.264, with the
    video's own audio when it has one). `detector`: a FaceDetector to reuse, else the configured one."""
    info = probe_video(video_path)
    count = min(len(frame_map(video_path, fps, info.num_frames, info.fps)), max(1, round(seconds * fps)))
    schedule = np.arange(count, dtype=np.int64)
    progress = RunProgress.of(progress)
    said: list[str] = []
    stop = None
    try:
        chosen = resolve_face_choice(face_choice, face_index, face_position, video_path, detector, fps, count,
                                     progress, say=said.append)
    except NoSpeakerError as error:  # a run stops here; the preview shows what it found, every frame untouched
        chosen, stop = error.passthrough, str(error)
    source = ChunkSource(video_path, schedule, chunk_size, resolution, fps, detector=detector, progress=progress,
                         face_choice=chosen, occlusion=occlusion, mask_folder=Path(out_path).parent)
    config = detector.config if detector is not None else load_faces_config()
    keep_mask = load_fixed_mask(resolution, fixed_mask=config.fixed_mask)[0].numpy()
    audio = video_path if info.has_audio else None
    with VideoWriter(out_path, fps, audio_path=audio, audio_duration=count / fps if audio else None, crf=23,
                     preset="veryfast", like=info) as overlay:
        finish = FrameFinisher(source.track, overlay=overlay, cuts=source.cuts, keep_mask=keep_mask)
        for chunk in source:
            finish(chunk, None)
    return PreviewResult(Path(out_path), count, int(source.track.has_face.sum()), tuple(said), stop)
