"""Optional backends fail clearly when their models are absent, and nothing is ever downloaded."""

from __future__ import annotations

import importlib.util
import socket

import numpy as np
import pytest

from latentsync.faces.backends import BACKENDS, FaceBackendUnavailableError, FaceModelNotFoundError
from latentsync.faces.backends.base import AlignmentPointSet
from latentsync.faces.backends.insightface_backend import POINT_SET_106
from latentsync.faces.backends.mediapipe_backend import POINT_SETS as MEDIAPIPE_SETS
from latentsync.faces.detector import FaceDetector
from latentsync.faces.settings import load_faces_config


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(
    "backend,root_key,expected_file",
    [
        ("insightface", "insightface.root", "models/buffalo_l/det_10g.onnx"),
        ("face_alignment", "face_alignment.root", "checkpoints/s3fd-619a316812.pth"),
    ],
)
def test_missing_model_message(tmp_path, no_network, backend, root_key, expected_file):
    config = load_faces_config(overrides=[f"{root_key}={tmp_path}"])
    with pytest.raises(FaceModelNotFoundError) as info:
        FaceDetector(backend=backend, config=config)
    message = str(info.value)
    assert f"{backend} face model not found at {tmp_path / expected_file}" in message
    assert "put it there or use --face_detector mediapipe" in message
    assert list(tmp_path.iterdir()) == []  # nothing created, nothing fetched


def test_missing_model_is_reported_before_the_package(tmp_path, no_network):
    """Even with the package absent (as here) the user first learns where the model must go."""
    config = load_faces_config(overrides=[f"insightface.root={tmp_path}"])
    with pytest.raises(FileNotFoundError, match="model not found"):
        FaceDetector(backend="insightface", config=config)


@pytest.mark.skipif(importlib.util.find_spec("insightface") is not None, reason="insightface is installed")
def test_models_present_but_package_missing(tmp_path, no_network):
    pack = tmp_path / "models" / "buffalo_l"
    pack.mkdir(parents=True)
    for name in ("det_10g.onnx", "2d106det.onnx"):
        (pack / name).write_bytes(b"")
    config = load_faces_config(overrides=[f"insightface.root={tmp_path}"])
    with pytest.raises(FaceBackendUnavailableError, match="pip install insightface onnxruntime"):
        FaceDetector(backend="insightface", config=config)


def test_unknown_backend():
    with pytest.raises(ValueError, match="mediapipe, insightface, face_alignment"):
        FaceDetector(backend="dlib")
    assert BACKENDS == ("mediapipe", "insightface", "face_alignment")


def test_mediapipe_runs_offline(no_network):
    from skimage.data import astronaut

    with FaceDetector(backend="mediapipe") as detector:
        result = detector.detect(astronaut())
    assert result is not None and result.landmarks.shape == (468, 2)


def test_point_sets_map_to_template_order():
    """Official 106-point groups, and mediapipe's: image-left brow, image-right brow, nose (4 points)."""
    assert POINT_SET_106.left_brow == (43, 48, 49, 51, 50)
    assert POINT_SET_106.right_brow == (101, 102, 103, 104, 105)
    assert POINT_SET_106.nose == (74, 77, 83, 86)
    lm = np.zeros((106, 2))
    lm[[43, 48, 49, 51, 50]] = [10, 20]
    lm[101:106] = [30, 20]
    lm[[74, 77, 83, 86]] = [20, 40]
    np.testing.assert_array_equal(POINT_SET_106.points3(lm), [[10, 20], [30, 20], [20, 40]])
    for preset in MEDIAPIPE_SETS.values():
        assert isinstance(preset, AlignmentPointSet)
        assert max(max(g) for g in (preset.left_brow, preset.right_brow, preset.nose)) < 468


def test_mediapipe_points_on_a_real_face():
    """On the astronaut: brows left/right of the nose, nose below them, brow gap ~ 0.5 of the face width."""
    from skimage.data import astronaut

    with FaceDetector(backend="mediapipe") as detector:
        result = detector.detect(astronaut())
    left, right, nose = result.points3
    assert left[0] < nose[0] < right[0]
    assert nose[1] > max(left[1], right[1]) + 0.4 * (right[0] - left[0])
    face_width = result.landmarks[:, 0].max() - result.landmarks[:, 0].min()
    assert 0.35 < (right[0] - left[0]) / face_width < 0.65
