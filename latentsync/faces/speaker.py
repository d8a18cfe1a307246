"""Which face is speaking: each tracked face's mouth movement against the speech level of the video's audio.

A speaker's mouth moves while they talk and rests in their pauses; a listener's (or someone speaking at
other times) does not move in step with this audio. Every face is tracked over frames downscaled by ffmpeg
(`all_faces.AllFacesTracker`); the audio gives the log energy of the speech band (`speaker.speech_band_hz`) at
the same frame rate. The cue is the mouth's *motion*: how far the inner-lip points move from frame to frame in
the face's own frame (head moves and zooms removed; |d opening / dt| where a backend has no lip points), smoothed
over `speaker.smooth_frames` like the audio; a face's score is the best normalized cross-correlation of the two
while the audio follows the mouth by `speaker.lag_frames` (mouths move before the sound they make). Faces are scored shot by shot (tracks end at cuts); in each shot the
best-scoring face whose score clears its null threshold (the same face against circularly shifted audio) is
the speaker, and a shot where nobody clears it has no speaker and is left untouched. The opening itself was the
weaker cue on real video (smiles and slow drifts dominate it; measured in docs/faces.md).
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field, replace
from itertools import islice

import numpy as np

from latentsync.utils.media import iter_small_frames, read_audio

from .all_faces import AllFacesTracker, MouthTrack
from .detector import FaceDetector
from .settings import SpeakerSettings
from .shots import CutDetector, SourceCuts, Timeline, detection_size, frames_after_cuts, shot_ranges, timeline_cuts

SAMPLE_RATE = 16000  # the audio is read at this rate for its per-frame level (any rate works; 16 kHz like the rest)


@dataclass(frozen=True)
class SpeakerCandidate:
    """One face's result. `lag`: the audio follows the mouth by that many frames at the best score.
    `threshold`: the score this face must beat to count as speaking (its null; NaN: could not be set)."""

    track_id: int
    box: np.ndarray
    score: float  # NaN: too few frames with a mouth measurement to be scored
    lag: int
    frames: int
    threshold: float = float("nan")

    @property
    def speaks(self) -> bool:
        return bool(np.isfinite(self.score) and np.isfinite(self.threshold) and self.score > self.threshold)

    def line(self) -> str:
        box = ", ".join(f"{v:.0f}" for v in self.box)
        if not np.isfinite(self.score):
            return f"face choice speaker: track {self.track_id} box [{box}]: seen in {self.frames} frames, too few to score"
        null = f", null threshold {self.threshold:.2f}" if np.isfinite(self.threshold) else ", no null threshold"
        return (f"face choice speaker: track {self.track_id} box [{box}] score {self.score:.2f} "
                f"(lag {self.lag} frames, {self.frames} frames{null})")


@dataclass
class ShotSpeaker:
    """One shot [start, end) of the face pass's frames: its faces (best first) and the speaker, if any."""

    start: int
    end: int
    candidates: list[SpeakerCandidate]
    chosen: SpeakerCandidate | None

    def line(self, number: int, total: int) -> str:
        head = f"shot {number}/{total}: frames {self.start}-{self.end - 1} ({self.end - self.start})"
        if self.chosen is not None:
            c = self.chosen
            return f"{head}: track {c.track_id}, score {c.score:.2f} > null {c.threshold:.2f}"
        scored = [c for c in self.candidates if np.isfinite(c.score)]
        if not self.candidates:
            why = "no face"
        elif not scored:
            why = "no face seen long enough to score"
        elif not np.isfinite(scored[0].threshold):
            why = f"too short to judge (best track {scored[0].track_id} score {scored[0].score:.2f}, no null)"
        else:
            best = max(scored, key=lambda c: c.score - c.threshold)
            why = f"nobody speaks (best track {best.track_id} score {best.score:.2f} <= null {best.threshold:.2f})"
        return f"{head}: none, {why}: passed through untouched"


@dataclass
class SpeakerChoice:
    """Every candidate (best first), the best chosen one (None if no shot has a speaker), the chosen faces'
    boxes per frame (NaN in shots without a speaker), the shots, the cuts (frames that start a shot) and whether
    the audio is sound at all (`audible`; silence cannot tell a speaker from anyone else)."""

    candidates: list[SpeakerCandidate]
    chosen: SpeakerCandidate | None
    boxes: np.ndarray | None  # (N, 4) full-frame pixels, NaN where no chosen face was found
    shots: list[ShotSpeaker] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)
    audible: bool = True

    def lines(self) -> list[str]:
        lines = [c.line() for c in self.candidates]
        spoken = [s.chosen for s in self.shots if s.chosen is not None]
        if len(spoken) > 1 or (spoken and len(self.shots) > 1):
            tracks = ", ".join(f"track {c.track_id} (score {c.score:.2f})" for c in spoken)
            lines.append(f"face choice speaker: lip-syncing {tracks} in {len(spoken)} of {len(self.shots)} shots; "
                         "other faces and shots are left untouched")
        elif self.chosen is not None:
            lines.append(f"face choice speaker: lip-syncing track {self.chosen.track_id} "
                         f"(score {self.chosen.score:.2f}); other faces are left untouched")
        return lines

    def shot_lines(self) -> list[str]:
        """The shot table: one line per shot (frames, chosen face or none, score, null threshold)."""
        return [shot.line(k, len(self.shots)) for k, shot in enumerate(self.shots, start=1)]


def speech_envelope(samples: np.ndarray, sample_rate: int, fps: float, num_frames: int, floor: float) -> np.ndarray:
    """log RMS of the audio during each video frame (frame k covers [k/fps, (k+1)/fps)); silence past the end."""
    edges = frame_edges(num_frames, sample_rate, fps)
    energy = np.concatenate([[0.0], np.cumsum(np.asarray(samples, dtype=np.float64) ** 2)])
    clipped = np.minimum(edges, len(samples))
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    rms = np.sqrt((energy[clipped[1:]] - energy[clipped[:-1]]) / counts)
    return np.log(np.maximum(rms, floor))


def is_audible(level: np.ndarray, cfg: SpeakerSettings) -> bool:
    """Whether a `speech_band_level` series is sound (a voice, music, noise) rather than silence: its
    `audible_quantile` reaches `audible_rms`. Speech in the corpus reaches 0.025-0.19 there, a silent track 0.001."""
    return bool(len(level)) and float(np.quantile(level, float(cfg.audible_quantile))) >= np.log(float(cfg.audible_rms))


def frame_edges(num_frames: int, sample_rate: int, fps: float) -> np.ndarray:
    """Sample index where each video frame starts (frame k covers [k/fps, (k+1)/fps)), plus the end."""
    return np.round(np.arange(num_frames + 1) * sample_rate / fps).astype(np.int64)


def speech_band_level(samples: np.ndarray, sample_rate: int, fps: float, num_frames: int, band, floor: float
                      ) -> np.ndarray:
    """log RMS of the `band` [low, high) Hz part of the audio during each video frame (a Hann-windowed spectrum
    per frame); silence past the end. Voice lives in this band; hum, rumble and hiss do not move a mouth."""
    samples = np.asarray(samples)  # each frame's samples meet the float64 window; no float64 copy of the whole
    edges = frame_edges(num_frames, sample_rate, fps)
    size = int(max(2, (edges[1:] - edges[:-1]).max(initial=2)))
    frequencies = np.fft.rfftfreq(size, 1.0 / sample_rate)
    wanted = (frequencies >= band[0]) & (frequencies < band[1])
    level = np.full(num_frames, np.log(floor))
    for k in range(num_frames):
        chunk = samples[edges[k]:edges[k + 1]]
        if len(chunk) < 2:
            continue
        window = np.hanning(len(chunk))
        spectrum = np.abs(np.fft.rfft(chunk * window, size)) ** 2
        power = 2.0 * spectrum[wanted].sum() / (size * (window ** 2).sum())
        level[k] = np.log(max(np.sqrt(power), floor))
    return level


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


def null_scores(mouth: np.ndarray, audio: np.ndarray, cfg: SpeakerSettings) -> np.ndarray:
    """The face's scores against its audio circularly shifted far from any true lag: what chance gives.

    Shifts d run from `null_min_shift` to n - `null_min_shift` - max lag (the lag search on top of a shift
    must not reach back to the true alignment), at most `null_shifts` of them, evenly spread."""
    n, max_lag = len(audio), int(cfg.lag_frames[1])
    low, high = int(cfg.null_min_shift), n - int(cfg.null_min_shift) - max_lag
    if high < low:
        return np.zeros(0)
    shifts = np.unique(np.linspace(low, high, min(int(cfg.null_shifts), high - low + 1)).round().astype(int))
    scores = [lagged_correlation(mouth, np.roll(audio, d), cfg.lag_frames, int(cfg.min_frames))[0] for d in shifts]
    return np.asarray([r for r in scores if np.isfinite(r)])


def score_face(face: MouthTrack, envelope: np.ndarray, cfg: SpeakerSettings, start: int = 0, end: int | None = None
               ) -> SpeakerCandidate:
    """The face's best correlation over the lag range within frames [start, end), and its null threshold."""
    end = len(envelope) if end is None else end
    k = int(cfg.smooth_frames)
    mouth, audio = smooth(face.mouth_motion(start, end), k), smooth(envelope[start:end], k)
    r, lag, _ = lagged_correlation(mouth, audio, cfg.lag_frames, int(cfg.min_frames))
    threshold = float("nan")
    if np.isfinite(r):
        null = null_scores(mouth, audio, cfg)
        if len(null):
            threshold = float(np.quantile(null, float(cfg.null_quantile)) + float(cfg.null_margin))
    frames = int(np.isfinite(face.over(face.opening, start, end)).sum())
    return SpeakerCandidate(face.track_id, np.nanmedian(face.over(face.boxes, start, end), axis=0), r, lag, frames,
                            threshold)


def _best_first(candidates: list[SpeakerCandidate]) -> list[SpeakerCandidate]:
    return sorted(candidates, key=lambda c: (np.isfinite(c.score), c.score if np.isfinite(c.score) else 0.0),
                  reverse=True)


def choose_speaker(faces: list[MouthTrack], envelope: np.ndarray, cfg: SpeakerSettings, cuts=()) -> SpeakerChoice:
    """Per shot (split at `cuts`), score every face seen there; the best one that clears its null threshold
    speaks, and nobody does when none clears it (NaN scores never win)."""
    num_frames = len(envelope)
    boxes = np.full((num_frames, 4), np.nan)
    shots, everyone = [], []
    for start, end in shot_ranges(cuts, num_frames):
        here = [f for f in faces if f.seen_in(start, end)]
        candidates = _best_first([score_face(f, envelope, cfg, start, end) for f in here])
        chosen = next((c for c in candidates if c.speaks), None)
        if chosen is not None:
            track = next(f for f in faces if f.track_id == chosen.track_id)
            boxes[start:end] = track.over(track.boxes, start, end)
        shots.append(ShotSpeaker(start, end, candidates, chosen))
        everyone += candidates
    spoken = [s.chosen for s in shots if s.chosen is not None]
    chosen = _best_first(spoken)[0] if spoken else None
    return SpeakerChoice(_best_first(everyone), chosen, boxes if chosen is not None else None, shots,
                         sorted(int(c) for c in cuts))


def analysis_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Even frame size with the longest side at most `max_side` (never upscaled)."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def find_speaker(video_path, detector: FaceDetector, fps: float, num_frames: int, progress=None,
                 detect_shots: bool | None = None) -> SpeakerChoice | None:
    """The speaking face of each shot among frames 0 .. num_frames-1 of the video at `fps`; None when it has
    no audio track.

    The same downscaled frames feed the shot cut detector (`latentsync.faces.shots`; `detect_shots`, default
    `shots.detect` in the config), so the video is decoded once; tracks end at every cut. `progress`
    (optional) gets `update(1)` per analysed frame, like a tqdm bar."""
    timeline = Timeline.of(video_path, fps, num_frames)
    if not timeline.has_audio:
        return None
    cfg = detector.config.speaker
    width, height = analysis_size(timeline.width, timeline.height, int(cfg.analysis_max_side))
    tracker = AllFacesTracker(detector, num_frames, scale=timeline.width / width)
    cuts = None
    if detector.config.shots.detect if detect_shots is None else detect_shots:
        cuts = CutDetector(detector.config.shots, timeline.fps, detection_size(timeline.width, timeline.height))
    repeats = timeline.repeats()
    wanted = len(repeats) + (cuts.delay if cuts is not None else 0)  # the detector looks a few frames ahead
    cut_pending, found = False, set()
    with closing(iter_small_frames(video_path, width, height)) as small:
        frames = islice(small, wanted)
        ordered = enumerate(frames) if cuts is None else frames_after_cuts(frames, SourceCuts(cuts), found)
        for source_index, frame in ordered:  # the cut finder runs beside the tracker, a few frames ahead
            cut_pending = cut_pending or source_index in found
            for _ in range(int(repeats[source_index]) if source_index < len(repeats) else 0):
                tracker.update(frame, cut=cut_pending)  # frames shown twice after a frame-rate change
                cut_pending = False
                if progress is not None:
                    progress.update(1)
    envelope = speech_band_level(read_audio(video_path, SAMPLE_RATE), SAMPLE_RATE, fps, num_frames,
                                 cfg.speech_band_hz, float(cfg.envelope_floor))
    shot_cuts = timeline_cuts(cuts.cuts, timeline.indices) if cuts is not None else []
    return replace(choose_speaker(tracker.tracks(), envelope, cfg, shot_cuts), audible=is_audible(envelope, cfg))
