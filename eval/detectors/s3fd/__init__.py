"""S3FD face detector as used by the SyncNet evaluation (`detect_faces` returns pixel boxes + scores)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from eval.detectors.s3fd.box_utils import nms_
from eval.detectors.s3fd.nets import S3FDNet
from latentsync.checkpoint import CheckpointError, load_weights

# Per-channel means subtracted from the pixels, in B, G, R order (the network still sees R, G, B order).
BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)


def preprocess(image_rgb: np.ndarray, scale: float) -> torch.Tensor:
    """(1, 3, h, w) network input: resized by `scale`, RGB order, R-123, G-117, B-104, 0..255 range."""
    scaled = cv2.resize(image_rgb, dsize=(0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    chw = scaled.transpose(2, 0, 1).astype(np.float32) - BGR_MEAN[::-1, None, None]
    return torch.from_numpy(np.ascontiguousarray(chw)).unsqueeze(0)


class S3FD:
    """S3FD with its checkpoint. `net` may be any callable with S3FDNet's forward contract (tests use stand-ins)."""

    def __init__(self, device: str = "cpu", checkpoint: str | Path | None = None, net: Callable | None = None):
        self.device = device
        if net is None:
            net = S3FDNet(device=device)
            if checkpoint is None:
                raise CheckpointError("S3FD needs a checkpoint (sfd_face.pth); see docs/evaluation.md")
            load_weights(net, checkpoint, "S3FD", prefixes=("module.",))
            net = net.to(device).eval()
        self.net = net

    @torch.no_grad()
    def detect_faces(self, image: np.ndarray, conf_th: float = 0.8, scales: Sequence[float] = (1,),
                     merge_nms: float = 0.1) -> np.ndarray:
        """(K, 5) float64 `[x1, y1, x2, y2, score]` in pixels of `image` (RGB uint8 HxWx3), merged over scales."""
        height, width = image.shape[:2]
        pixel_scale = torch.tensor([width, height, width, height], dtype=torch.float32)  # float32 product, as the original
        found = []
        for scale in scales:
            detections = self.net(preprocess(image, scale).to(self.device)).cpu()
            for cls in range(detections.shape[1]):
                rows = detections[0, cls]
                for row in rows[: int((rows[:, 0] > conf_th).long().cumprod(0).sum())]:
                    box = (row[1:] * pixel_scale).numpy()
                    found.append([*box, float(row[0])])
        bboxes = np.array(found, dtype=np.float64).reshape(-1, 5)
        return bboxes[nms_(bboxes, merge_nms)] if len(bboxes) else bboxes
