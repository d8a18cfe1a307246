"""The fixed mouth-region mask, generated from a compact geometric description (no png in the repo).

The official pipeline reads `latentsync/utils/mask.png` (256x256, 1 = keep, 0 = regenerate) and resizes it
with LANCZOS4. The png is two side bands plus a rounded bowl over mouth and chin; `configs/faces.yaml`
(`fixed_mask`) stores its rows as spans, and this module rebuilds the exact same pixels.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from latentsync.config import CONFIG_DIR, load_config

FACES_CONFIG = CONFIG_DIR / "faces.yaml"


@lru_cache(maxsize=1)
def _mask_geometry() -> dict:
    cfg = load_config(FACES_CONFIG).fixed_mask
    return {
        "size": int(cfg.size),
        "band_rows": tuple(cfg.bands.rows),
        "band_spans": [tuple(s) for s in cfg.bands.spans],
        "bowl_start": int(cfg.bowl.row_start),
        "bowl_left": list(cfg.bowl.left),
        "bowl_right": list(cfg.bowl.right),
    }


@lru_cache(maxsize=1)
def base_mask_u8() -> np.ndarray:
    """The official 256x256 mask as a single-channel uint8 image with values {0, 255}."""
    geo = _mask_geometry()
    if len(geo["bowl_left"]) != len(geo["bowl_right"]):
        raise ValueError(f"{FACES_CONFIG}: fixed_mask.bowl.left and .right must have the same length")
    mask = np.full((geo["size"], geo["size"]), 255, dtype=np.uint8)
    row0, row1 = geo["band_rows"]
    for x0, x1 in geo["band_spans"]:
        mask[row0:row1, x0:x1] = 0
    for offset, (x0, x1) in enumerate(zip(geo["bowl_left"], geo["bowl_right"], strict=True)):
        mask[geo["bowl_start"] + offset, x0:x1] = 0
    mask.setflags(write=False)
    return mask


def fixed_mask_rgb_u8(resolution: int) -> np.ndarray:
    """(R, R, 3) uint8 mask as the official loader holds it just before `/ 255`: LANCZOS4-resized from 256.

    The three channels of the png are identical, so one channel is resized and repeated.
    """
    if resolution <= 0:
        raise ValueError(f"mask resolution must be positive, got {resolution}")
    base = base_mask_u8()
    resized = cv2.resize(base, (resolution, resolution), interpolation=cv2.INTER_LANCZOS4)
    return np.repeat(resized[:, :, None], 3, axis=2)
