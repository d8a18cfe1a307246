"""Pluggable face backends (detector + landmarks). Optional packages are imported only by their backend."""

from __future__ import annotations

from latentsync.errors import InputError

from .base import (
    AlignmentPointSet,
    DetectedFace,
    FaceBackend,
    FaceBackendUnavailableError,
    FaceModelNotFoundError,
    landmark_box,
)

BACKENDS = ("mediapipe", "insightface", "face_alignment")


def create_backend(name: str, cfg, device: str = "cpu") -> FaceBackend:
    """Build the backend `name` from the matching section of the faces config (`cfg`: a `FacesConfig`)."""
    key = name.replace("-", "_")
    if key == "mediapipe":
        from .mediapipe_backend import MediaPipeBackend

        section = cfg.mediapipe
        return MediaPipeBackend(
            detection_model=section.detection_model,
            detect_max_side=section.detect_max_side,
            mesh_roi_scale=section.mesh_roi_scale,
            mesh_max_side=section.mesh_max_side,
            mesh_min_score=section.mesh_min_score,
            points_preset=section.points_preset,
            min_detection_score=min(float(cfg.detector.min_score), float(section.mesh_min_score)),
        )
    if key == "insightface":
        from .insightface_backend import InsightFaceBackend

        return InsightFaceBackend(root=cfg.insightface.root, det_size=cfg.insightface.det_size, device=device)
    if key == "face_alignment":
        from .face_alignment_backend import FaceAlignmentBackend

        section = cfg.face_alignment
        return FaceAlignmentBackend(root=section.root, device=device, points_preset=section.points_preset)
    raise InputError(f"unknown face detector {name!r}; choose one of {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "AlignmentPointSet",
    "DetectedFace",
    "FaceBackend",
    "FaceBackendUnavailableError",
    "FaceModelNotFoundError",
    "create_backend",
    "landmark_box",
]
