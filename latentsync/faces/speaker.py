"""Which face is speaking: each tracked face's mouth movement against the speech envelope of the video's audio.

A speaker's mouth moves while they talk and rests in their pauses; a listener's (or someone speaking at
other times) does not move in step with this audio. Every face is tracked over frames downscaled by ffmpeg
(`all_faces.AllFacesTracker`); the audio gives a log-RMS envelope at the same frame rate. The cue is the
mouth's *motion*, |d opening / dt|, smoothed over `speaker.smooth_frames` like the envelope; a face's score
is the best normalized cross-correlation of the two while the audio follows the mouth by `speaker.lag_frames`
(mouths move before the sound they make). The best-scoring face is the speaker. The opening itself was the
weaker cue on real video (smiles and slow drifts dominate it; measured in docs/faces.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentsync.utils.media import frame_map, iter_small_frames, probe_video, read_audio

from .all_faces import AllFacesTracker, MouthTrack
from .detector import FaceDetector

SAMPLE_RATE = 16000  # the audio is read at this rate for the envelope (any rate works; 16 kHz like the rest)


@dataclass(frozen=True)
class SpeakerCandidate:
    """One face's result. `lag`: the audio follows the mouth by that many frames at the best score."""

    track_id: int
    box: np.ndarray
    score: float  # NaN: too few frames with a mouth measurement to be scored
    lag: int
    frames: int

    def line(self) -> str:
        box = ", ".join(f"{v:.0f}" for v in self.box)
        if not np.isfinite(self.score):
            return f"face choice speaker: track {self.track_id} box [{box}]: seen in {self.frames} frames, too few to score"
        return (f"face choice speaker: track {self.track_id} box [{box}] score {self.score:.2f} "
                f"(lag {self.lag} frames, {self.frames} frames)")


@dataclass
class SpeakerChoice:
    """Every candidate (best first), the chosen one (None if none could be scored) and its box per frame."""

    candidates: list[SpeakerCandidate]
    chosen: SpeakerCandidate | None
    boxes: np.ndarray | None  # (N, 4) full-frame pixels, NaN where the chosen face was not found

    def lines(self) -> list[str]:
        lines = [c.line() for c in self.candidates]
        if self.chosen is not None:
            lines.append(f"face choice speaker: lip-syncing track {self.chosen.track_id} "
                         f"(score {self.chosen.score:.2f}); other faces are left untouched")
        return lines


def speech_envelope(samples: np.ndarray, sample_rate: int, fps: float, num_frames: int, floor: float) -> np.ndarray:
    """log RMS of the audio during each video frame (frame k covers [k/fps, (k+1)/fps)); silence past the end."""
    edges = np.round(np.arange(num_frames + 1) * sample_rate / fps).astype(np.int64)
    energy = np.concatenate([[0.0], np.cumsum(np.asarray(samples, dtype=np.float64) ** 2)])
    clipped = np.minimum(edges, len(samples))
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    rms = np.sqrt((energy[clipped[1:]] - energy[clipped[:-1]]) / counts)
    return np.log(np.maximum(rms, floor))


def smooth(series: np.ndarray, frames: int) -> np.ndarray:
    """Centred moving average; NaN spreads to the frames whose window touches it."""
    if frames <= 1:
        return np.asarray(series, dtype=np.float64)
    kernel = np.ones(frames) / frames
    padded = np.pad(np.asarray(series, dtype=np.float64), frames // 2, mode="edge")
    return np.convolve(padded, kernel, mode="valid")[: len(series)]


def lagged_correlation(mouth: np.ndarray, audio: np.ndarray, lags, min_frames: int) -> tuple[float, int, int]:
    """Best Pearson correlation of mouth[t] with audio[t + lag] over lag in [lags[0], lags[1]]: (r, lag, frames).

    Only frames where both are finite count; a lag with fewer than `min_frames` of them is skipped."""
    best = (float("nan"), 0, 0)
    n = len(mouth)
    for lag in range(int(lags[0]), int(lags[1]) + 1):
        a = mouth[max(0, -lag): n - max(0, lag)]
        b = audio[max(0, lag): n - max(0, -lag)]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < min_frames:
            continue
        x, y = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
        denominator = np.sqrt((x * x).sum() * (y * y).sum())
        r = float((x * y).sum() / denominator) if denominator > 0 else 0.0
        if not np.isfinite(best[0]) or r > best[0]:
            best = (r, lag, int(ok.sum()))
    return best


def mouth_motion(opening: np.ndarray) -> np.ndarray:
    """|d opening / dt| per frame (NaN next to frames without a measurement)."""
    opening = np.asarray(opening, dtype=np.float64)
    if len(opening) < 2:
        return np.full(len(opening), np.nan)
    return np.abs(np.gradient(opening))


def score_face(face: MouthTrack, envelope: np.ndarray, cfg) -> SpeakerCandidate:
    """The face's best correlation over the lag range."""
    k = int(cfg.smooth_frames)
    r, lag, _ = lagged_correlation(smooth(mouth_motion(face.opening), k), smooth(envelope, k), cfg.lag_frames,
                                   int(cfg.min_frames))
    return SpeakerCandidate(face.track_id, face.typical_box(), r, lag, face.num_frames)


def choose_speaker(faces: list[MouthTrack], envelope: np.ndarray, cfg) -> SpeakerChoice:
    """Score every face track and pick the best (NaN scores never win)."""
    candidates = sorted((score_face(f, envelope, cfg) for f in faces if f.num_frames > 0),
                        key=lambda c: (np.isfinite(c.score), c.score if np.isfinite(c.score) else 0.0), reverse=True)
    chosen = candidates[0] if candidates and np.isfinite(candidates[0].score) else None
    boxes = next(f.boxes for f in faces if f.track_id == chosen.track_id) if chosen else None
    return SpeakerChoice(candidates, chosen, boxes)


def analysis_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Even frame size with the longest side at most `max_side` (never upscaled)."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def find_speaker(video_path, detector: FaceDetector, fps: float, num_frames: int, progress=None) -> SpeakerChoice | None:
    """The speaking face among frames 0 .. num_frames-1 of the video at `fps`; None when it has no audio track.

    `progress` (optional) gets `update(1)` per analysed frame, like a tqdm bar."""
    info = probe_video(video_path)
    if not info.has_audio:
        return None
    cfg = detector.config.speaker
    width, height = analysis_size(info.width, info.height, int(cfg.analysis_max_side))
    tracker = AllFacesTracker(detector, num_frames, scale=info.width / width)
    wanted = frame_map(video_path, fps, info.num_frames, info.fps)[:num_frames]
    repeats = np.bincount(wanted, minlength=int(wanted.max()) + 1) if len(wanted) else np.zeros(0, np.int64)
    for source_index, frame in enumerate(iter_small_frames(video_path, width, height)):
        if source_index >= len(repeats):
            break
        for _ in range(int(repeats[source_index])):  # frames shown twice after a frame-rate change
            tracker.update(frame)
            if progress is not None:
                progress.update(1)
    envelope = speech_envelope(read_audio(video_path, SAMPLE_RATE), SAMPLE_RATE, fps, num_frames,
                               float(cfg.envelope_floor))
    return choose_speaker(tracker.tracks(), envelope, cfg)
