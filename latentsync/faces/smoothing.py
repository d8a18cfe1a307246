"""Temporal smoothing of the 3 alignment points, and interpolation across short face-less gaps.

Landmark models jitter by a pixel or two from frame to frame; the aligned crop then shakes and the generated
mouth flickers. The `adaptive` filter (the idea LatentSync 1.0 used on its 68 points) damps small moves
strongly and lets large moves through: weight of the previous value = exp(-d^2 / (face_width * alpha)).
"""

from __future__ import annotations

import numpy as np

METHODS = ("adaptive", "ema", "none")


class PointSmoother:
    """Causal filter over a sequence of (3, 2) point sets. `reset()` at a new track or after a gap."""

    def __init__(self, method: str = "adaptive", alpha: float = 0.3, ema_weight: float = 0.5):
        if method not in METHODS:
            raise ValueError(f"unknown smoothing method {method!r}; choose one of {', '.join(METHODS)}")
        if method == "adaptive" and alpha <= 0:
            raise ValueError(f"smoothing.alpha must be > 0, got {alpha}")
        if not 0.0 <= ema_weight < 1.0:
            raise ValueError(f"smoothing.ema_weight must be in [0, 1), got {ema_weight}")
        self.method = method
        self.alpha = alpha
        self.ema_weight = ema_weight
        self._previous = None

    def reset(self) -> None:
        self._previous = None

    def __call__(self, points: np.ndarray, face_width: float) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        if self.method == "none" or self._previous is None:
            self._previous = points.copy()
            return points.copy()
        if self.method == "ema":
            keep = np.full((len(points), 1), self.ema_weight)
        else:
            moved_sq = np.sum((points - self._previous) ** 2, axis=1, keepdims=True)
            keep = np.exp(-moved_sq / (max(face_width, 1.0) * self.alpha))
        smoothed = self._previous * keep + points * (1.0 - keep)
        self._previous = smoothed
        return smoothed.copy()


def interpolate_points(before: np.ndarray, after: np.ndarray, count: int) -> list[np.ndarray]:
    """`count` point sets evenly between two known ones (exclusive), for bridging a gap of `count` frames."""
    before, after = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    steps = np.arange(1, count + 1) / (count + 1)
    return [before + (after - before) * t for t in steps]
