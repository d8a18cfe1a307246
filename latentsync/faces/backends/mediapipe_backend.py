"""MediaPipe backend (default): BlazeFace boxes + the 468-point face mesh, bundled with mediapipe 0.10.21.

Runs fully offline on CPU. The box detector sees a downscaled frame (it works at 192 px anyway); the mesh
sees a square crop around the face, so its cost does not grow with the video resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from .base import AlignmentPointSet, DetectedFace, FaceBackend, FaceBackendUnavailableError

# MediaPipe mesh indices. "Left"/"right" are image sides of a frontal, unmirrored face (the subject's right
# brow is on the image left), matching the template's point order. See docs/faces.md for the reasoning.
POINT_SETS = {
    # Equivalent of the 1.5/1.6 insightface points: the upper brow edge from the outer corner to the inner
    # corner (106-pt 43,48,49,51,50 / 102..105,101), and the nose as bridge point 3, the widest point of each
    # nostril wing and the tip (106-pt 74, 77, 83, 86).
    "v15": AlignmentPointSet(
        left_brow=(70, 63, 105, 66, 107),
        right_brow=(300, 293, 334, 296, 336),
        nose=(5, 129, 358, 4),
    ),
    # LatentSync 1.0: 68-point brows 17-21 / 22-26 and nose 27-35, through its own mesh -> 68 mapping.
    "v10": AlignmentPointSet(
        left_brow=(71, 63, 105, 66, 107),
        right_brow=(336, 296, 334, 293, 301),
        nose=(168, 197, 5, 4, 75, 97, 2, 326, 305),
    ),
}


def _square_roi(box: np.ndarray, scale: float, width: int, height: int) -> tuple[int, int, int, int]:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = max(box[2] - box[0], box[3] - box[1]) * scale / 2
    x0, y0 = max(0, int(round(cx - half))), max(0, int(round(cy - half)))
    x1, y1 = min(width, int(round(cx + half))), min(height, int(round(cy + half)))
    return x0, y0, x1, y1


class MediaPipeBackend(FaceBackend):
    name = "mediapipe"
    num_landmarks = 468

    def __init__(
        self,
        detection_model: int = 1,
        detect_max_side: int = 640,
        mesh_roi_scale: float = 1.8,
        mesh_max_side: int = 320,
        mesh_min_score: float = 0.3,
        points_preset: str = "v15",
        min_detection_score: float = 0.3,
    ):
        try:
            import mediapipe as mp
        except ImportError as exc:
            raise FaceBackendUnavailableError("mediapipe", "pip install --no-deps mediapipe==0.10.21") from exc
        if not hasattr(mp, "solutions"):
            raise FaceBackendUnavailableError("mediapipe", "mediapipe<=0.10.21 (later versions ship no face models)")
        if points_preset not in POINT_SETS:
            raise ValueError(f"unknown mediapipe points_preset {points_preset!r}; choose one of {sorted(POINT_SETS)}")
        self.point_set = POINT_SETS[points_preset]
        self.detect_max_side = detect_max_side
        self.mesh_roi_scale = mesh_roi_scale
        self.mesh_max_side = mesh_max_side
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=detection_model, min_detection_confidence=min_detection_score
        )
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=False, min_detection_confidence=mesh_min_score
        )

    def detect(self, frame: np.ndarray) -> list[DetectedFace]:
        height, width = frame.shape[:2]
        scale = min(1.0, self.detect_max_side / max(height, width))
        small = frame
        if scale < 1.0:
            small = cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LINEAR)
        result = self._detector.process(np.ascontiguousarray(small))
        faces = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            box = np.array([rel.xmin * width, rel.ymin * height, (rel.xmin + rel.width) * width,
                            (rel.ymin + rel.height) * height])
            faces.append(DetectedFace(box=box, score=float(det.score[0])))
        return faces

    def landmarks(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        height, width = frame.shape[:2]
        x0, y0, x1, y1 = _square_roi(np.asarray(box, dtype=np.float64), self.mesh_roi_scale, width, height)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        crop = frame[y0:y1, x0:x1]
        scale = min(1.0, self.mesh_max_side / max(crop.shape[:2]))
        if scale < 1.0:
            crop = cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)),
                              interpolation=cv2.INTER_AREA)
        result = self._mesh.process(np.ascontiguousarray(crop))
        if not result.multi_face_landmarks:
            return None
        mesh = result.multi_face_landmarks[0].landmark
        crop_h, crop_w = crop.shape[:2]
        points = np.array([(p.x * crop_w, p.y * crop_h) for p in mesh], dtype=np.float64)
        return points / scale + np.array([x0, y0], dtype=np.float64)

    def close(self) -> None:
        self._detector.close()
        self._mesh.close()
