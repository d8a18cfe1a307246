"""Follow one face through a video: box detection on a stride, landmark tracking in between.

The (multi-face) box detector runs every `tracking.detect_every` frames, and again at once whenever the
landmarks lose the face. Between those keyframes the next frame's search box comes from the current
landmarks, so the landmark model still runs on every frame (accuracy) but the detector does not (speed), and
the edited face cannot jump to another person between keyframes. At keyframes the face is chosen by
`detector.choice`; with `tracked` it must overlap the current track (or, after a loss, the place the face
was last seen, for up to `tracking.reacquire_after` frames). With `guide_boxes` (the `speaker` choice: the
chosen face's box in every frame, found beforehand) it must overlap the guide box of that frame, so no other
person is ever picked up; where the guide has no box the current track continues, and nothing new starts
(the detector does not run there unless a followed face is to be found again).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backends import landmark_box
from .choice import FaceChoice
from .detector import FaceDetector, box_iou, choose_face
from .settings import FacesConfig


@dataclass
class TrackedFace:
    """The followed face in one frame."""

    box: np.ndarray  # (x1, y1, x2, y2) landmark box, frame pixels
    landmarks: np.ndarray  # (N, 2)
    points3: np.ndarray  # (3, 2) raw (unsmoothed) alignment points
    score: float  # score of the last detection of this track
    track_id: int  # changes when a different face (or the same after a loss) is picked up
    detected: bool  # whether the box detector ran on this frame


class FaceTracker:
    """Stateful per-frame face follower. Call `update(frame)` on consecutive RGB uint8 frames.

    `config`: the faces config (None: the detector's); `face_choice`: which face (None: the config's choice)."""

    def __init__(self, detector: FaceDetector, config: FacesConfig | None = None, face_choice: FaceChoice | None = None):
        cfg = config if config is not None else detector.config
        face_choice = face_choice if face_choice is not None else FaceChoice.configured(cfg)
        self.detector = detector
        self.detect_every = max(1, int(cfg.tracking.detect_every))
        self.guide_boxes = None if face_choice.guide_boxes is None else np.asarray(face_choice.guide_boxes, np.float64)
        self.choice = "tracked" if self.guide_boxes is not None else face_choice.choice
        self.choice_index = int(face_choice.index)
        self.choice_position = face_choice.position
        self.min_iou = float(cfg.tracking.min_iou)
        self.lost_redetect = bool(cfg.tracking.lost_redetect)
        self.reacquire_after = int(cfg.tracking.reacquire_after)
        self._lost_frames = 0
        self.detector_runs = 0
        self._frame_index = -1
        self._since_detection = None  # frames since the last detector run (None: never ran)
        self._track_box = None  # where to look next (landmark box of the last frame with a face)
        self._last_box = None  # last known face box, kept through losses for `tracked`
        self._score = 0.0
        self._track_id = 0
        self._new_track = False  # after `reset`: the next face found starts a new track, whatever its place

    def reset(self) -> None:
        """Forget the current face (at a shot cut): the next frame runs the detector, nothing is carried
        over from before (no search box, no place to reacquire), and the next face found is a new track."""
        self._since_detection = None
        self._track_box = None
        self._last_box = None
        self._lost_frames = 0
        self._new_track = True

    def _keyframe_due(self) -> bool:
        return self._track_box is None or self._since_detection is None or self._since_detection >= self.detect_every

    def _run_detector(self, frame: np.ndarray):
        """Choose a face among fresh detections; returns (landmarks, detection) or (None, None). Where a guide
        has no box and no face is followed (a shot where nobody speaks), the detector does not run: no face
        found there could be taken."""
        self._since_detection = 0
        reference = self._track_box if self._track_box is not None else self._last_box
        if self.guide_boxes is not None:
            reference = self._guide_box(reference)
            if reference is None:
                return None, None
        self.detector_runs += 1
        faces = self.detector.detect_all(frame)
        face = choose_face(
            faces,
            choice=self.choice,
            index=self.choice_index,
            position=self.choice_position,
            previous_box=reference if self.choice == "tracked" else None,
            min_iou=self.min_iou,
        )
        if face is None:
            return None, None
        landmarks = self.detector.landmarks_for(frame, face)
        if landmarks is None:
            return None, None
        if self._new_track or reference is None or box_iou(face.box, reference) < self.min_iou:
            self._track_id += 1  # a different face, the same one found elsewhere, or a new shot: smoothing restarts
            self._new_track = False
        self._score = face.score
        return landmarks, face

    def _guide_box(self, own: np.ndarray | None) -> np.ndarray | None:
        """The guide's box for this frame, else the face being followed (None: no face to follow here)."""
        i = self._frame_index
        if i < len(self.guide_boxes) and np.isfinite(self.guide_boxes[i]).all():
            return self.guide_boxes[i]
        return own

    def update(self, frame: np.ndarray) -> TrackedFace | None:
        """The followed face in the next frame, or None when there is no (acceptable) face."""
        self._frame_index += 1
        if self._since_detection is not None:
            self._since_detection += 1

        detected = False
        landmarks = None
        if self._keyframe_due():
            previous_box = self._track_box
            landmarks, _ = self._run_detector(frame)
            detected = True
            if landmarks is None and previous_box is not None:
                # the box detector missed (or rejected) every face: the landmark model may still hold the track
                landmarks = self.detector.backend.landmarks(frame, previous_box)
        else:
            landmarks = self.detector.backend.landmarks(frame, self._track_box)
            if landmarks is None and self.lost_redetect:
                landmarks, _ = self._run_detector(frame)
                detected = True

        if landmarks is None:
            self._track_box = None
            self._lost_frames += 1
            if self._lost_frames > self.reacquire_after:
                self._last_box = None  # `tracked` may now start over with a new face
            return None

        self._lost_frames = 0

        box = landmark_box(landmarks)
        self._track_box = self.detector.backend.track_box(landmarks)
        self._last_box = self._track_box
        return TrackedFace(
            box=box,
            landmarks=landmarks,
            points3=self.detector.backend.points3(landmarks),
            score=self._score,
            track_id=self._track_id,
            detected=detected,
        )
