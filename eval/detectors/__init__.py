"""Face detectors for the evaluation: S3FD (official) and documented fallbacks, behind one call signature.

Every detector is a callable `frame_rgb (H, W, 3) uint8 -> (K, 5) float [x1, y1, x2, y2, score]` in pixels,
with a `name` attribute saying which one ran.
"""

from __future__ import annotations

import logging
from pathlib import Path

from eval.detectors.s3fd import S3FD

logger = logging.getLogger(__name__)

DETECTOR_KINDS = ("auto", "s3fd", "latentsync", "mediapipe")


class S3FDFaceBoxes:
    """S3FD with the SyncNet pipeline's settings (confidence 0.9 at scale 0.25 by default)."""

    name = "s3fd"

    def __init__(self, checkpoint: str | Path, device: str, conf_threshold: float, scales, merge_nms: float):
        self.s3fd = S3FD(device=device, checkpoint=checkpoint)
        self.conf_threshold, self.scales, self.merge_nms = conf_threshold, list(scales), merge_nms

    def __call__(self, frame_rgb):
        return self.s3fd.detect_faces(frame_rgb, conf_th=self.conf_threshold, scales=self.scales,
                                      merge_nms=self.merge_nms)


def make_face_detector(settings, s3fd_checkpoint: str | Path, device: str = "cpu", kind: str | None = None):
    """Build the detector named by `kind` (default: `settings.detector`).

    "auto" uses S3FD when its checkpoint exists, else the project's face detector, else mediapipe, and logs
    which one it chose.
    """
    from eval.detectors.fallback import LatentSyncFaceBoxes, MediapipeFaceBoxes

    kind = kind or settings.detector
    if kind not in DETECTOR_KINDS:
        raise ValueError(f"unknown face detector '{kind}'; choose one of {DETECTOR_KINDS}")
    s3fd_args = (s3fd_checkpoint, device, settings.s3fd_conf_threshold, settings.s3fd_scales, settings.s3fd_merge_nms)
    if kind == "s3fd":
        return S3FDFaceBoxes(*s3fd_args)
    if kind == "latentsync":
        return LatentSyncFaceBoxes(device, settings.fallback_conf_threshold)
    if kind == "mediapipe":
        return MediapipeFaceBoxes(settings.fallback_conf_threshold)
    if Path(s3fd_checkpoint).is_file():
        return S3FDFaceBoxes(*s3fd_args)
    logger.warning("S3FD checkpoint %s not found: using a fallback face detector (numbers will differ "
                   "slightly from the official protocol)", s3fd_checkpoint)
    try:
        return LatentSyncFaceBoxes(device, settings.fallback_conf_threshold)
    except Exception as error:  # module not there yet, or its own weights missing
        logger.warning("project face detector unavailable (%s); using mediapipe", error)
        return MediapipeFaceBoxes(settings.fallback_conf_threshold)


__all__ = ["S3FD", "S3FDFaceBoxes", "make_face_detector", "DETECTOR_KINDS"]
