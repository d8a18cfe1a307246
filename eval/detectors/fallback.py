"""Face detectors used when the S3FD checkpoint is absent, adapted to S3FD's `(K, 5)` box output.

Their boxes are not S3FD's (tighter or landmark-based), so SyncNet numbers computed with them are close to,
not identical with, the official protocol. The choice is reported with every result.
"""

from __future__ import annotations

import numpy as np


class LatentSyncFaceBoxes:
    """The project's default face detector (`latentsync.faces.detector.FaceDetector`): one face per frame."""

    name = "latentsync"

    def __init__(self, device: str = "cpu", threshold: float = 0.5):
        from latentsync.faces.detector import FaceDetector  # written by another module; imported lazily

        self.detector = FaceDetector(device=device)
        self.threshold = threshold

    def __call__(self, frame_rgb: np.ndarray) -> np.ndarray:
        if hasattr(self.detector, "detect_all"):  # every valid face with its score
            faces = self.detector.detect_all(frame_rgb, self.threshold)
            rows = [[*(float(v) for v in face.box[:4]), float(face.score)] for face in faces]
            return np.array(rows, dtype=np.float64).reshape(-1, 5)
        box, _ = self.detector(frame_rgb, threshold=self.threshold)  # official interface: the largest face
        if box is None:
            return np.zeros((0, 5))
        return np.array([[*(float(v) for v in box[:4]), 1.0]])


class MediapipeFaceBoxes:
    """mediapipe's short-range BlazeFace detector (bundled with the package, no download)."""

    name = "mediapipe"

    def __init__(self, threshold: float = 0.5):
        import mediapipe as mp

        self.detector = mp.solutions.face_detection.FaceDetection(
            model_selection=0, min_detection_confidence=threshold
        )

    def __call__(self, frame_rgb: np.ndarray) -> np.ndarray:
        height, width = frame_rgb.shape[:2]
        results = self.detector.process(np.ascontiguousarray(frame_rgb))
        rows = []
        for detection in results.detections or []:
            box = detection.location_data.relative_bounding_box
            x1, y1 = box.xmin * width, box.ymin * height
            rows.append([x1, y1, x1 + box.width * width, y1 + box.height * height, float(detection.score[0])])
        return np.array(rows, dtype=np.float64).reshape(-1, 5)

    def close(self) -> None:
        self.detector.close()
