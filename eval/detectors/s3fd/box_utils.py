"""S3FD box arithmetic: prior boxes, offset decoding, greedy NMS and the per-image detection tail."""

from __future__ import annotations

import numpy as np
import torch

# Anchor layout of the six S3FD heads and the SSD-style decoding constants (fixed by the checkpoint).
MIN_SIZES = (16, 32, 64, 128, 256, 512)
STEPS = (4, 8, 16, 32, 64, 128)
VARIANCE = (0.1, 0.2)
TOP_K = 750            # output rows per class
NMS_IOU = 0.3          # in-network NMS threshold
SCORE_FLOOR = 0.05     # candidates below this face probability are dropped before NMS
NMS_CANDIDATES = 5000  # highest-scoring candidates NMS looks at


def nms_(dets: np.ndarray, thresh: float) -> np.ndarray:
    """Greedy NMS on (K, 5) `[x1, y1, x2, y2, score]` rows; keeps a box if IoU <= thresh with every kept one.

    Returns the kept row indices (int32), highest score first. Areas are w*h (no +1).
    """
    x1, y1, x2, y2, scores = (dets[:, k] for k in range(5))
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]))
        inter = w * h
        iou = inter / (areas[best] + areas[rest] - inter)
        order = rest[iou <= thresh]
    return np.array(keep, dtype=np.int32)


def prior_boxes(input_hw: tuple[int, int], feature_maps: list[tuple[int, int]]) -> torch.Tensor:
    """(P, 4) anchors `[cx, cy, w, h]` normalised to the network input, head by head, row-major."""
    height, width = input_hw
    rows = []
    for (fh, fw), step, size in zip(feature_maps, STEPS, MIN_SIZES, strict=True):
        ii, jj = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        cx = (jj.ravel() + 0.5) / (width / step)
        cy = (ii.ravel() + 0.5) / (height / step)
        wh = np.broadcast_to([size / width, size / height], (cx.size, 2))
        rows.append(np.column_stack([cx, cy, wh]))
    return torch.from_numpy(np.concatenate(rows).astype(np.float32))


def decode(loc: torch.Tensor, priors: torch.Tensor, variances=VARIANCE) -> torch.Tensor:
    """Regression offsets (P, 4) + anchors (P, 4) -> corner boxes `[x1, y1, x2, y2]` (normalised)."""
    centres = priors[:, :2] + loc[:, :2] * variances[0] * priors[:, 2:]
    sizes = priors[:, 2:] * torch.exp(loc[:, 2:] * variances[1])
    corners_min = centres - sizes / 2
    return torch.cat((corners_min, corners_min + sizes), 1)


def nms(boxes: torch.Tensor, scores: torch.Tensor, overlap: float = 0.5, top_k: int = 200) -> torch.Tensor:
    """Greedy NMS over the `top_k` best boxes; returns kept indices, best first (IoU > overlap suppressed)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    x1, y1, x2, y2 = boxes.unbind(1)
    area = (x2 - x1) * (y2 - y1)
    order = scores.sort(0)[1][-top_k:].flip(0)
    keep = []
    while order.numel() > 0:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        w = (torch.minimum(x2[rest], x2[best]) - torch.maximum(x1[rest], x1[best])).clamp(min=0.0)
        h = (torch.minimum(y2[rest], y2[best]) - torch.maximum(y1[rest], y1[best])).clamp(min=0.0)
        inter = w * h
        iou = inter / ((area[rest] - inter) + area[best])
        order = rest[iou.le(overlap)]
    return torch.tensor(keep, dtype=torch.long)


def detect(loc: torch.Tensor, conf: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Per-image detections (B, 2, TOP_K, 5) rows `[score, x1, y1, x2, y2]` from (B, P, 4) offsets and
    (B, P, 2) softmax scores; class 0 (background) stays zero, unused rows are zero."""
    batch = loc.shape[0]
    output = torch.zeros(batch, 2, TOP_K, 5)
    for b in range(batch):
        boxes = decode(loc[b], priors)
        face = conf[b, :, 1]
        mask = face.gt(SCORE_FLOOR)
        scores, candidates = face[mask], boxes[mask]
        keep = nms(candidates, scores, NMS_IOU, NMS_CANDIDATES)[:TOP_K]
        output[b, 1, : len(keep)] = torch.cat((scores[keep].unsqueeze(1), candidates[keep]), 1)
    return output
