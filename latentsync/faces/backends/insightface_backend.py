"""InsightFace backend: buffalo_l detection (det_10g) + landmark_2d_106, the official 1.5/1.6 preprocessing.

Used only when the models are already under `<root>/models/buffalo_l/` (the official layout with
root = checkpoints/auxiliary). insightface and onnxruntime are optional and imported only here; FaceAnalysis
would download missing models, so the files are checked first and nothing is ever fetched.

Like the official pipeline, frames are passed in the order the video reader gives them (RGB), and the
106 landmarks are rounded to integers before the three points are averaged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import AlignmentPointSet, DetectedFace, FaceBackend, FaceBackendUnavailableError, require_files

MODEL_PACK = "buffalo_l"
MODEL_FILES = ("det_10g.onnx", "2d106det.onnx")

# Official image_processor.py: upper brow edges and bridge 3 / nostril wings / tip (see docs/faces.md).
POINT_SET_106 = AlignmentPointSet(
    left_brow=(43, 48, 49, 51, 50),
    right_brow=(101, 102, 103, 104, 105),
    nose=(74, 77, 83, 86),
)


class _BoxOnly:
    """The minimal `Face` the insightface landmark model reads (it only uses `bbox`, then sets attributes)."""

    def __init__(self, box: np.ndarray):
        self.bbox = np.asarray(box, dtype=np.float32)

    def __setitem__(self, key, value):
        setattr(self, key, value)


def _device_to_ctx(device: str) -> int:
    if device == "cpu":
        return -1
    if device == "cuda":
        return 0
    if device.startswith("cuda:"):
        return int(device.split(":", 1)[1])
    raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")


class InsightFaceBackend(FaceBackend):
    name = "insightface"
    num_landmarks = 106
    point_set = POINT_SET_106

    def __init__(self, root: str | Path = "checkpoints/auxiliary", det_size: int = 512, device: str = "cpu"):
        model_dir = Path(root) / "models" / MODEL_PACK
        require_files(self.name, [model_dir / f for f in MODEL_FILES])
        try:
            from insightface.app import FaceAnalysis
        except ImportError as exc:
            raise FaceBackendUnavailableError(self.name, "pip install insightface onnxruntime") from exc
        ctx = _device_to_ctx(device)
        providers = ["CPUExecutionProvider"] if ctx < 0 else ["CUDAExecutionProvider", "CPUExecutionProvider"]
        self._app = FaceAnalysis(
            name=MODEL_PACK, root=str(root), allowed_modules=["detection", "landmark_2d_106"], providers=providers
        )
        self._app.prepare(ctx_id=ctx, det_size=(det_size, det_size))
        self._landmark_model = self._app.models["landmark_2d_106"]

    def detect(self, frame: np.ndarray) -> list[DetectedFace]:
        faces = []
        for face in self._app.get(frame):
            lmk = np.round(face.landmark_2d_106).astype(np.int64).astype(np.float64)  # official rounding
            # official: boxes are truncated to int before the size filters
            faces.append(DetectedFace(box=face.bbox.astype(np.int64).astype(np.float64), score=float(face.det_score),
                                      landmarks=lmk))
        return faces

    def landmarks(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        face = _BoxOnly(box)
        lmk = self._landmark_model.get(frame, face)
        if lmk is None:
            return None
        return np.round(lmk).astype(np.int64).astype(np.float64)

    def track_box(self, landmarks: np.ndarray) -> np.ndarray:
        # The 106 model expects a detector-like box; the landmark hull (brows to chin) is close to det_10g's box
        # once the forehead is added back: extend the top by a quarter of the height.
        x1, y1, x2, y2 = landmarks[:, 0].min(), landmarks[:, 1].min(), landmarks[:, 0].max(), landmarks[:, 1].max()
        return np.array([x1, y1 - 0.25 * (y2 - y1), x2, y2])
