"""Every face of a video followed over time: per track, its box and mouth opening in each frame.

`FaceTracker` follows the one face to edit; the `speaker` face choice first needs all of them, to ask
which mouth moves with the audio. The box detector runs every `tracking.detect_every` frames; between
keyframes each track's landmarks are found from its previous landmarks, as `FaceTracker` does. At a shot cut
(`update(frame, cut=True)`) every track ends and the detector runs at once: no track continues across a cut. A detection
continues the track found in the same place in this frame, or a track lost there within the last
`tracking.reacquire_after` frames (IoU >= `tracking.min_iou`); any other valid detection starts a new track.
Only small per-frame numbers are kept (a box, an opening and the lips' motion per track), never frames, and only
for the frames a track covers: a long video with many shots has many tracks, so a track's arrays start at its
first frame and grow as it goes (`MouthTrack.first`), instead of spanning the whole video.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from latentsync.errors import InputError

from .backends import DetectedFace, landmark_box
from .detector import FaceDetector, box_iou


@dataclass
class MouthTrack:
    """One tracked face: its box, mouth opening and lip motion per frame from video frame `first` on, NaN where it
    was not found (`over` gives them over any frames of the video). `motion` is None for a backend without lip
    points (or a track given as openings only)."""

    track_id: int
    boxes: np.ndarray  # (n, 4) landmark box (x1, y1, x2, y2) in full-frame pixels
    opening: np.ndarray  # (n,) mean inner-lip distance / face height
    motion: np.ndarray | None = None  # (n,) lip speed in the face frame (`lip_speed`), NaN after a frame without it
    first: int = 0  # the video frame of the arrays' first row

    def over(self, series: np.ndarray, start: int, end: int) -> np.ndarray:
        """One of this track's series (`boxes`, `opening`, `motion`) over video frames [start, end), NaN where the
        track has no row."""
        out = np.full((max(0, end - start), *series.shape[1:]), np.nan)
        rows = self._rows(start, end)
        if rows.stop > rows.start:
            out[rows.start + self.first - start: rows.stop + self.first - start] = series[rows]
        return out

    def seen_in(self, start: int, end: int) -> bool:
        """Whether the face was found in any of video frames [start, end)."""
        return bool(np.isfinite(self.opening[self._rows(start, end)]).any())

    def _rows(self, start: int, end: int) -> slice:
        """The rows of this track's arrays that hold video frames [start, end) (empty when none do)."""
        lo, hi = max(start, self.first), min(end, self.first + len(self.opening))
        return slice(lo - self.first, max(lo, hi) - self.first)

    def mouth_motion(self, start: int | None = None, end: int | None = None) -> np.ndarray:
        """The mouth motion in video frames [start, end) (None: the track's own frames) that the speaker score
        correlates with the audio: |d opening / dt| plus the lip speed, each in units of its own spread there (so
        both count alike); |d opening / dt| alone without lip speeds. The opening alone misses lip shapes, the lip
        speed alone is noisier on faces whose landmarks jitter (measured in docs/faces.md)."""
        start = self.first if start is None else start
        end = self.first + len(self.opening) if end is None else end
        opening = self.over(self.opening, start, end)
        opening_motion = np.abs(np.gradient(opening)) if len(opening) >= 2 else np.full(len(opening), np.nan)
        if self.motion is None:
            return opening_motion
        return in_spread_units(opening_motion) + in_spread_units(self.over(self.motion, start, end))

    @property
    def num_frames(self) -> int:
        return int(np.isfinite(self.opening).sum())

    def typical_box(self) -> np.ndarray:
        """The median box over the frames where the face was found (for reports)."""
        return np.nanmedian(self.boxes, axis=0)


def in_spread_units(series: np.ndarray) -> np.ndarray:
    """The series over its standard deviation (NaN ignored); unchanged when it does not vary."""
    spread = float(np.nanstd(series)) if np.isfinite(series).any() else 0.0
    return series / spread if spread > 0 else series


def mouth_opening(landmarks: np.ndarray, pairs) -> float:
    """Mean distance of the inner-lip landmark pairs over the face height (scale-free, 0 = closed)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    height = lm[:, 1].max() - lm[:, 1].min()
    if height <= 0:
        return float("nan")
    return float(np.mean([np.linalg.norm(lm[a] - lm[b]) for a, b in pairs]) / height)


def lips_in_face_frame(landmarks: np.ndarray, lips, anchors) -> np.ndarray:
    """The lip points in the face's own frame: origin at the anchors' mean, x along the eye line (anchors 0-1:
    one eye's corners, 2-3: the other's), unit = the eye distance. Head moves, turns in the image plane and
    zooms leave them unchanged; the lips' own motion does not."""
    lm = np.asarray(landmarks, dtype=np.float64)
    eye_a, eye_b = lm[list(anchors[:2])].mean(axis=0), lm[list(anchors[2:4])].mean(axis=0)
    axis = eye_b - eye_a
    distance = float(np.hypot(*axis))
    if distance <= 0:
        return np.full((len(lips), 2), np.nan)
    cos, sin = axis / distance
    points = lm[list(lips)] - lm[list(anchors)].mean(axis=0)
    return np.stack([points[:, 0] * cos + points[:, 1] * sin, points[:, 1] * cos - points[:, 0] * sin], axis=1) / distance


def lip_speed(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean distance the lip points moved between two frames (face-frame units, see `lips_in_face_frame`)."""
    return float(np.mean(np.linalg.norm(current - previous, axis=1)))


class _Rows:
    """A track's per-frame rows (box, opening, lip motion) from its first frame on, NaN where it was not found;
    grown as the track goes, so its memory follows the frames it covers."""

    WIDTH = 6

    def __init__(self, first: int):
        self.first, self.length = first, 0
        self.data = np.full((64, self.WIDTH), np.nan)

    def put(self, index: int, box, opening: float, motion: float) -> None:
        row = index - self.first
        if row >= len(self.data):
            grown = np.full((max(2 * len(self.data), row + 1), self.WIDTH), np.nan)
            grown[: self.length] = self.data[: self.length]
            self.data = grown
        self.data[row] = (*box, opening, motion)
        self.length = max(self.length, row + 1)

    def drop(self, index: int) -> None:
        """Forget frame `index` (set earlier by `put`)."""
        self.data[index - self.first] = np.nan

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes (n, 4), opening (n,), motion (n,)), copies trimmed to the rows written."""
        rows = self.data[: self.length].copy()
        return rows[:, :4], rows[:, 4], rows[:, 5]


@dataclass
class _Track:
    track_id: int
    rows: _Rows
    lips: np.ndarray | None = None  # the last recorded lip points in the face frame
    lips_at: int = -2  # ... and their frame
    search_box: np.ndarray | None = None  # where to look in the next frame (analysis pixels); None = lost
    last_box: np.ndarray | None = None
    last_seen: int = -1
    found: dict = field(default_factory=dict)  # frame index -> analysis-pixel box, for the current frame only


class AllFacesTracker:
    """Call `update(frame)` on consecutive RGB frames (possibly downscaled: `scale` = full-frame pixels per
    analysis pixel, so size rules and reported boxes are those of the full frames), then `tracks()`."""

    def __init__(self, detector: FaceDetector, num_frames: int, scale: float = 1.0):
        cfg = detector.config
        self.detector = detector
        self.backend = detector.backend
        pairs = cfg.mouth_pairs(self.backend.name)
        if not pairs:
            raise InputError(f"--face_choice speaker needs mouth landmarks, which the {self.backend.name} face "
                             "detector does not define; use --face_detector mediapipe")
        self.mouth_pairs = [tuple(int(i) for i in pair) for pair in pairs]
        self.lip_points, self.face_anchors = cfg.lip_frame(self.backend.name)
        self.num_frames = num_frames
        self.scale = float(scale)
        self.detect_every = max(1, int(cfg.tracking.detect_every))
        self.min_iou = float(cfg.tracking.min_iou)
        self.reacquire_after = int(cfg.tracking.reacquire_after)
        self.duplicate_iou = float(cfg.speaker.duplicate_iou)
        self._tracks: list[_Track] = []
        self._index = -1
        self._next_detection = 0  # frame index of the next keyframe

    def _valid(self, face: DetectedFace) -> bool:
        """The detector's rules, applied at full-frame size."""
        return self.detector.is_valid(DetectedFace(box=np.asarray(face.box) * self.scale, score=face.score))

    def _record(self, track: _Track, landmarks: np.ndarray) -> None:
        box = landmark_box(landmarks)
        motion = float("nan")
        if self.lip_points:
            lips = lips_in_face_frame(landmarks, self.lip_points, self.face_anchors)
            if track.lips is not None and track.lips_at == self._index - 1:
                motion = lip_speed(track.lips, lips)
            track.lips, track.lips_at = lips, self._index
        track.rows.put(self._index, box * self.scale, mouth_opening(landmarks, self.mouth_pairs), motion)
        track.search_box = self.backend.track_box(landmarks)
        track.last_box, track.last_seen = box, self._index
        track.found = {self._index: box}

    def _new_track(self) -> _Track:
        track = _Track(len(self._tracks) + 1, _Rows(first=self._index))
        self._tracks.append(track)
        return track

    def end_tracks(self) -> None:
        """A shot cut: every track stops here and cannot be reacquired; the next frame is a keyframe."""
        for track in self._tracks:
            track.search_box, track.last_box, track.found = None, None, {}
        self._next_detection = self._index + 1

    def update(self, frame: np.ndarray, cut: bool = False) -> None:
        """Follow the faces into the next frame; `cut`: this frame starts a new shot."""
        if cut:
            self.end_tracks()
        self._index += 1
        if self._index >= self.num_frames:
            raise ValueError(f"more frames than the {self.num_frames} announced")
        for track in self._tracks:  # follow every live track by its landmarks
            if track.search_box is None:
                continue
            landmarks = self.backend.landmarks(frame, track.search_box)
            if landmarks is None:
                track.search_box = None
            else:
                self._record(track, landmarks)
        if self._index >= self._next_detection:
            self._next_detection = self._index + self.detect_every
            self._add_detections(frame)
        self._drop_duplicates()

    def _here(self, track: _Track) -> np.ndarray | None:
        return track.found.get(self._index)

    def _add_detections(self, frame: np.ndarray) -> None:
        faces = sorted((f for f in self.backend.detect(frame) if self._valid(f)), key=lambda f: -f.score)
        for face in faces:
            if any(self._here(t) is not None and box_iou(face.box, self._here(t)) >= self.min_iou
                   for t in self._tracks):
                continue  # a track already follows this face
            lost = [t for t in self._tracks if self._here(t) is None and t.last_box is not None
                    and self._index - t.last_seen <= self.reacquire_after
                    and box_iou(face.box, t.last_box) >= self.min_iou]
            landmarks = self.detector.landmarks_for(frame, face)
            if landmarks is None:
                continue
            track = max(lost, key=lambda t: box_iou(face.box, t.last_box)) if lost else self._new_track()
            self._record(track, landmarks)

    def _drop_duplicates(self) -> None:
        """Two tracks that landed on one face: the younger one stops there."""
        here = [t for t in self._tracks if self._here(t) is not None]
        for i, older in enumerate(here):
            for younger in here[i + 1:]:
                if self._here(older) is None or self._here(younger) is None:
                    continue
                if box_iou(self._here(older), self._here(younger)) >= self.duplicate_iou:
                    younger.rows.drop(self._index)
                    younger.search_box, younger.found, younger.last_box = None, {}, None

    def tracks(self) -> list[MouthTrack]:
        out = []
        for t in self._tracks:
            boxes, opening, motion = t.rows.columns()
            out.append(MouthTrack(t.track_id, boxes, opening, motion if self.lip_points else None, first=t.rows.first))
        return out
