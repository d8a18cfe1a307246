"""Temporal smoothing of the alignment points and gap interpolation (pure numpy, no models)."""

from __future__ import annotations

import numpy as np
import pytest

from latentsync.faces.smoothing import PointSmoother, interpolate_points

POINTS = np.array([[100.0, 100.0], [140.0, 100.0], [120.0, 120.0]])
FACE_WIDTH = 200.0


def test_adaptive_damps_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    smoother = PointSmoother("adaptive", alpha=0.1)
    noisy = [POINTS + rng.normal(0, 0.7, POINTS.shape) for _ in range(200)]
    out = np.stack([smoother(p, FACE_WIDTH) for p in noisy])
    assert out[20:].std(axis=0).mean() < 0.5 * np.stack(noisy)[20:].std(axis=0).mean()

    smoother.reset()
    smoother(POINTS, FACE_WIDTH)
    jumped = smoother(POINTS + 30, FACE_WIDTH)  # a real move (30 px) passes almost unchanged
    assert np.abs(jumped - (POINTS + 30)).max() < 0.01


def test_first_frame_and_reset_pass_through():
    smoother = PointSmoother("adaptive", alpha=0.3)
    np.testing.assert_array_equal(smoother(POINTS, FACE_WIDTH), POINTS)
    smoother(POINTS + 1, FACE_WIDTH)
    smoother.reset()
    np.testing.assert_array_equal(smoother(POINTS + 5, FACE_WIDTH), POINTS + 5)


def test_ema_and_none():
    ema = PointSmoother("ema", ema_weight=0.5)
    ema(POINTS, FACE_WIDTH)
    np.testing.assert_allclose(ema(POINTS + 2, FACE_WIDTH), POINTS + 1)
    none = PointSmoother("none")
    none(POINTS, FACE_WIDTH)
    np.testing.assert_array_equal(none(POINTS + 2, FACE_WIDTH), POINTS + 2)


@pytest.mark.parametrize("kwargs", [{"method": "kalman"}, {"method": "adaptive", "alpha": 0}, {"ema_weight": 1.0}])
def test_bad_settings(kwargs):
    with pytest.raises(ValueError):
        PointSmoother(**kwargs)


def test_interpolate_points():
    steps = interpolate_points(POINTS, POINTS + 8, 3)
    assert len(steps) == 3
    for k, pts in enumerate(steps, start=1):
        np.testing.assert_allclose(pts, POINTS + 2 * k)
    assert interpolate_points(POINTS, POINTS, 0) == []
