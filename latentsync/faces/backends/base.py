"""What every face backend provides: boxes for all faces, landmarks for one face, the 3 alignment points."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FALLBACK_HINT = "put it there or use --face_detector mediapipe"


class FaceModelNotFoundError(FileNotFoundError):
    """A backend's model files are not on disk. Nothing is ever downloaded: the message says where to put them."""

    def __init__(self, backend: str, missing: list[Path]):
        listing = ", ".join(str(p) for p in missing)
        super().__init__(f"{backend} face model not found at {listing}; {FALLBACK_HINT}")
        self.backend = backend
        self.missing = missing


class FaceBackendUnavailableError(ImportError):
    """The backend's Python package is not installed."""

    def __init__(self, backend: str, install: str):
        super().__init__(
            f"the {backend} face detector needs `{install}`, which is not installed; "
            f"install it or use --face_detector mediapipe"
        )


@dataclass
class DetectedFace:
    """One face found by a detector. `box` is (x1, y1, x2, y2) in frame pixels (float)."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray | None = None  # (N, 2) when the detector also gives landmarks (insightface)
    extra: dict = field(default_factory=dict)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])


@dataclass(frozen=True)
class AlignmentPointSet:
    """Landmark indices averaged into the template's three points (image-left brow, image-right brow, nose)."""

    left_brow: tuple[int, ...]
    right_brow: tuple[int, ...]
    nose: tuple[int, ...]

    def points3(self, landmarks: np.ndarray) -> np.ndarray:
        lm = np.asarray(landmarks, dtype=np.float64)
        return np.stack([lm[list(group)].mean(axis=0) for group in (self.left_brow, self.right_brow, self.nose)])


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """Tight (x1, y1, x2, y2) box around landmarks."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return np.array([lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max()])


def require_files(backend: str, paths: list[Path]) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FaceModelNotFoundError(backend, missing)


class FaceBackend(ABC):
    """A detector + landmark model pair. Frames are RGB uint8 (H, W, 3)."""

    name: str = "base"
    point_set: AlignmentPointSet

    @abstractmethod
    def detect(self, frame: np.ndarray) -> list[DetectedFace]:
        """All faces in the frame (unfiltered; the caller applies score/size rules and picks one)."""

    @abstractmethod
    def landmarks(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """Landmarks (N, 2) of the face around `box`, or None when there is no face there (tracking lost)."""

    def track_box(self, landmarks: np.ndarray) -> np.ndarray:
        """The box to look in on the next frame, from this frame's landmarks."""
        return landmark_box(landmarks)

    def points3(self, landmarks: np.ndarray) -> np.ndarray:
        return self.point_set.points3(landmarks)

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to release
        """Release native resources (graphs, sessions)."""
