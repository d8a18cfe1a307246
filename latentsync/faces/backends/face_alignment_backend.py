"""face-alignment backend: S3FD boxes + 2DFAN-4 68-point landmarks, the LatentSync 1.0 setup.

Optional: the `face-alignment` package is imported only here, and its weights must already be in
`<root>/checkpoints/` (it would otherwise download them into the torch hub cache). The 68-point indices give
LatentSync 1.0's points: brows 17-21 and 22-26, nose 27-35.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import AlignmentPointSet, DetectedFace, FaceBackend, FaceBackendUnavailableError, require_files

DETECTOR_FILE = "s3fd-619a316812.pth"
LANDMARK_FILES = ("2DFAN4_1.6-c827573f02.zip", "2DFAN4-cd938726ad.zip")  # either (new / old face-alignment)

POINT_SETS = {
    "v10": AlignmentPointSet(left_brow=tuple(range(17, 22)), right_brow=tuple(range(22, 27)), nose=tuple(range(27, 36))),
    # 1.5/1.6 semantics on 68 points: upper brows, and bridge (29) + nostril outer corners (31, 35) + tip (30).
    "v15": AlignmentPointSet(left_brow=tuple(range(17, 22)), right_brow=tuple(range(22, 27)), nose=(29, 31, 35, 30)),
}


class FaceAlignmentBackend(FaceBackend):
    name = "face_alignment"
    num_landmarks = 68

    def __init__(self, root: str | Path = "checkpoints/auxiliary/face_alignment", device: str = "cpu",
                 points_preset: str = "v10"):
        if points_preset not in POINT_SETS:
            raise ValueError(f"unknown face_alignment points_preset {points_preset!r}; choose one of {sorted(POINT_SETS)}")
        self.point_set = POINT_SETS[points_preset]
        weights = Path(root) / "checkpoints"
        detector_path = weights / DETECTOR_FILE
        landmark_paths = [weights / name for name in LANDMARK_FILES]
        require_files(self.name, [detector_path])
        if not any(p.is_file() for p in landmark_paths):
            require_files(self.name, landmark_paths[:1])
        try:
            import face_alignment
        except ImportError as exc:
            raise FaceBackendUnavailableError(self.name, "pip install face-alignment") from exc
        import torch

        previous_hub = torch.hub.get_dir()
        torch.hub.set_dir(str(Path(root)))  # face-alignment finds its cached weights in <hub>/checkpoints
        try:
            self._fa = face_alignment.FaceAlignment(
                face_alignment.LandmarksType.TWO_D,
                flip_input=False,
                device=device,
                face_detector="sfd",
                face_detector_kwargs={"path_to_detector": str(detector_path)},
            )
        finally:
            torch.hub.set_dir(previous_hub)

    def detect(self, frame: np.ndarray) -> list[DetectedFace]:
        boxes = self._fa.face_detector.detect_from_image(frame[..., ::-1].copy())  # S3FD expects BGR
        return [DetectedFace(box=np.asarray(b[:4], dtype=np.float64), score=float(b[4])) for b in boxes]

    def landmarks(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        result = self._fa.get_landmarks_from_image(frame, detected_faces=[np.asarray(box, dtype=np.float32)])
        if not result:
            return None
        return np.asarray(result[0][:, :2], dtype=np.float64)
