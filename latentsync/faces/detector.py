"""Face detection with pluggable backends: which faces are usable, which one to edit, its 3 alignment points.

`FaceDetector(device, backend=...)` works per frame. The official call style is kept:
`bbox, landmarks = detector(frame)` returns the largest valid face or `(None, None)`. Richer results come
from `detect(frame)` (a `FaceResult` or None) and `detect_all(frame)`. Video-level tracking with a detection
stride lives in `tracking.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentsync.utils.closing import ClosesOnExit

from .backends import (
    BACKENDS,
    DetectedFace,
    FaceBackend,
    FaceBackendUnavailableError,
    FaceModelNotFoundError,
    create_backend,
)
from .settings import FacesConfig, as_faces_config

CHOICES = ("largest", "index", "position", "tracked")
# Every --face_choice: the above, made at keyframes, plus `speaker`, which is decided over the whole video first
# (latentsync/faces/speaker.py) and then followed like `tracked`.
FACE_CHOICES = (*CHOICES, "speaker")

__all__ = [
    "BACKENDS",
    "CHOICES",
    "DetectedFace",
    "FACE_CHOICES",
    "FaceBackendUnavailableError",
    "FaceDetector",
    "FaceModelNotFoundError",
    "FaceResult",
    "box_iou",
    "choose_face",
]


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class FaceResult:
    """The chosen face of one frame: where it is, how sure the detector was, its landmarks and 3 points."""

    box: np.ndarray  # (x1, y1, x2, y2) detection box, frame pixels
    score: float
    landmarks: np.ndarray  # (N, 2) backend landmarks, frame pixels
    points3: np.ndarray  # (3, 2): image-left brow centre, image-right brow centre, nose centre


def choose_face(
    faces: list[DetectedFace],
    choice: str = "largest",
    index: int = 0,
    position=None,
    previous_box: np.ndarray | None = None,
    min_iou: float = 0.3,
) -> DetectedFace | None:
    """Pick the face to edit among valid detections.

    largest: the biggest box (official). index: the n-th face from the left. position: the face whose box
    centre is nearest to (x, y). tracked: the face overlapping `previous_box` most (IoU >= min_iou), so the
    edit never jumps to another person; without a previous box it starts from the largest.
    """
    if not faces:
        return None
    if choice == "largest":
        return max(faces, key=lambda f: f.area)
    if choice == "index":
        ordered = sorted(faces, key=lambda f: f.centre[0])
        return ordered[index] if -len(ordered) <= index < len(ordered) else None
    if choice == "position":
        if position is None:
            raise ValueError("face choice 'position' needs detector.choice_position: [x, y] (pixels)")
        target = np.asarray(position, dtype=np.float64)
        return min(faces, key=lambda f: float(np.sum((f.centre - target) ** 2)))
    if choice == "tracked":
        if previous_box is None:
            return max(faces, key=lambda f: f.area)
        best = max(faces, key=lambda f: box_iou(f.box, previous_box))
        return best if box_iou(best.box, previous_box) >= min_iou else None
    raise ValueError(f"unknown face choice {choice!r}; choose one of {', '.join(CHOICES)}")


class FaceDetector(ClosesOnExit):
    """Per-frame face detection through a backend, with the official validity filters and face choice."""

    def __init__(self, device: str = "cpu", backend: str | FaceBackend | None = None,
                 config: FacesConfig | str | None = None):
        self.config = as_faces_config(config)
        self.device = device
        if isinstance(backend, FaceBackend):
            self.backend = backend
        else:
            self.backend = create_backend(backend or self.config.detector.backend, self.config, device=device)
        det = self.config.detector
        self.min_score = float(det.min_score)
        self.min_box_wh = self.config.min_box_wh(self.backend.name)
        self.aspect_range = det.aspect_range

    @property
    def name(self) -> str:
        return self.backend.name

    def is_valid(self, face: DetectedFace, threshold: float | None = None) -> bool:
        """Official rules: big enough, plausible aspect ratio, confident enough."""
        w, h = face.width, face.height
        if w < self.min_box_wh[0] or h < self.min_box_wh[1] or h <= 0:
            return False
        if not self.aspect_range[0] <= w / h <= self.aspect_range[1]:
            return False
        return face.score >= (self.min_score if threshold is None else threshold)

    def detect_all(self, frame: np.ndarray, threshold: float | None = None) -> list[DetectedFace]:
        """Every valid face in an RGB uint8 frame (no landmarks unless the backend gives them for free)."""
        return [f for f in self.backend.detect(frame) if self.is_valid(f, threshold)]

    def landmarks_for(self, frame: np.ndarray, face: DetectedFace) -> np.ndarray | None:
        return face.landmarks if face.landmarks is not None else self.backend.landmarks(frame, face.box)

    def result_for(self, frame: np.ndarray, face: DetectedFace) -> FaceResult | None:
        landmarks = self.landmarks_for(frame, face)
        if landmarks is None:
            return None
        return FaceResult(box=face.box, score=face.score, landmarks=landmarks, points3=self.backend.points3(landmarks))

    def detect(self, frame: np.ndarray, choice: str | None = None, **choice_kwargs) -> FaceResult | None:
        """The chosen face of one frame, or None. `choice` defaults to configs/faces.yaml detector.choice."""
        det = self.config.detector
        choice = choice or det.choice
        if choice == "index":
            choice_kwargs.setdefault("index", det.choice_index)
        if choice == "position":
            choice_kwargs.setdefault("position", det.choice_position)
        face = choose_face(self.detect_all(frame), choice=choice, **choice_kwargs)
        return None if face is None else self.result_for(frame, face)

    def __call__(self, frame: np.ndarray, threshold: float = 0.5):
        """Official interface: (bbox, landmarks) of the largest valid face, or (None, None)."""
        face = choose_face(self.detect_all(frame, threshold), choice="largest")
        if face is None:
            return None, None
        landmarks = self.landmarks_for(frame, face)
        if landmarks is None:
            return None, None
        return tuple(int(v) for v in face.box), landmarks

    def close(self) -> None:
        self.backend.close()
