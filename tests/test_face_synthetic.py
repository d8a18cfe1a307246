"""Detection, face choice, no-face marking and gap bridging on synthetic frames (no ../shared needed).

The face is a real one that ships with scikit-image (`skimage.data.astronaut()`), cut out with a soft edge
and placed into grey frames with known similarity transforms (moved, scaled, rotated by up to ±15°).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from latentsync.errors import NoFaceError
from latentsync.faces.choice import FaceChoice
from latentsync.faces.detector import FaceDetector, box_iou
from latentsync.faces.settings import load_faces_config
from latentsync.faces.video import VideoFaceProcessor, align_video
from latentsync.utils.image_processor import ImageProcessor

FRAME_HW = (360, 480)


class FaceStage:
    """Puts the astronaut's face into frames; knows where its alignment points must land."""

    def __init__(self, detector: FaceDetector):
        from skimage.data import astronaut

        image = astronaut()
        reference = detector.detect(image)
        assert reference is not None, "mediapipe must find the astronaut's face"
        self.points3 = reference.points3
        cx, cy = self.points3.mean(axis=0)
        y0, x0 = int(cy - 95), int(cx - 90)
        self.patch = image[y0 : y0 + 210, x0 : x0 + 180].astype(np.float32)
        self.anchor = np.array([cx - x0, cy - y0])
        h, w = self.patch.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        radius = np.sqrt(((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2)
        self.alpha = np.clip(1.9 - 1.6 * radius, 0, 1).astype(np.float32)
        self.patch_points = self.points3 - np.array([x0, y0])
        rng = np.random.default_rng(0)
        self.background = np.clip(110 + rng.normal(0, 4, (*FRAME_HW, 3)), 0, 255).astype(np.uint8)

    def matrix(self, angle: float, scale: float, centre) -> np.ndarray:
        m = cv2.getRotationMatrix2D((float(self.anchor[0]), float(self.anchor[1])), angle, scale)
        m[:, 2] += np.asarray(centre, dtype=np.float64) - self.anchor
        return m

    def frame(self, *placements, hw=FRAME_HW) -> np.ndarray:
        """A frame with one face per (angle, scale, (cx, cy)) placement; none gives an empty frame."""
        out = self.background.astype(np.float32) if hw == FRAME_HW else np.full((*hw, 3), 110, np.float32)
        for angle, scale, centre in placements:
            m = self.matrix(angle, scale, centre)
            size = (hw[1], hw[0])
            face = cv2.warpAffine(self.patch, m, size, flags=cv2.INTER_LINEAR)
            alpha = cv2.warpAffine(self.alpha, m, size, flags=cv2.INTER_LINEAR)[..., None]
            out = out * (1 - alpha) + face * alpha
        return out.round().astype(np.uint8)

    def expected_points(self, angle: float, scale: float, centre) -> np.ndarray:
        m = self.matrix(angle, scale, centre)
        return self.patch_points @ m[:, :2].T + m[:, 2]

    def brow_distance(self, scale: float) -> float:
        return float(np.linalg.norm(self.patch_points[1] - self.patch_points[0]) * scale)


@pytest.fixture(autouse=True)
def _one_thread():
    """Face ops are small; on 2 shared cores a second torch thread only adds contention."""
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def detector():
    with FaceDetector(backend="mediapipe") as det:
        yield det


@pytest.fixture(scope="module")
def stage(detector):
    return FaceStage(detector)


def _config(*overrides):
    return load_faces_config(overrides=list(overrides))


@pytest.mark.parametrize("angle", [-15, 0, 15])
@pytest.mark.parametrize("scale,centre", [(0.8, (150, 150)), (1.0, (240, 180)), (1.3, (300, 200))])
def test_points_follow_moved_scaled_rotated_face(detector, stage, angle, scale, centre):
    result = detector.detect(stage.frame((angle, scale, centre)))
    assert result is not None
    assert result.score > 0.5
    assert result.landmarks.shape == (468, 2)
    error = np.abs(result.points3 - stage.expected_points(angle, scale, centre)).max()
    assert error < 0.05 * stage.brow_distance(scale)  # observed <= 0.02


def test_alignment_undoes_the_motion(stage):
    """Crops of the face moved/scaled/rotated look like the crop of the upright face."""
    processor = ImageProcessor(resolution=256)
    upright, box, matrix = processor.affine_transform(stage.frame((0, 1.0, (240, 180))))
    assert upright.shape == (3, 256, 256) and upright.dtype == torch.uint8
    assert box == [0, 0, 210, 280] and matrix.shape == (1, 2, 3)
    centre = (slice(40, 216), slice(40, 216))  # inside the face, away from the placed patch's soft edge
    for angle, scale, pos in [(15, 0.8, (160, 150)), (-15, 1.3, (300, 200))]:
        fresh = ImageProcessor(resolution=256)  # no nose smoothing carried over from another pose
        face, _, _ = fresh.affine_transform(stage.frame((angle, scale, pos)))
        diff = (face.float() - upright.float()).abs()[:, centre[0], centre[1]]
        assert diff.mean().item() < 12  # grey levels; a 4 px misalignment already gives ~20


def test_empty_frame_has_no_face(detector, stage):
    blank = stage.frame()
    assert detector.detect(blank) is None
    assert detector(blank) == (None, None)
    processor = ImageProcessor(resolution=256, face_detector=detector)
    with pytest.raises(NoFaceError, match="Face not detected"):
        processor.affine_transform(blank)
    assert processor.affine_transform(blank, allow_missing=True) is None


def test_official_call_interface(detector, stage):
    box, landmarks = detector(stage.frame((0, 1.0, (240, 180))))
    assert len(box) == 4 and all(isinstance(v, int) for v in box)
    assert landmarks.shape == (468, 2)


def test_choice_with_two_faces(detector, stage):
    big, small = (5, 1.2, (140, 180)), (-5, 0.8, (360, 200))
    frame = stage.frame(big, small)
    faces = detector.detect_all(frame)
    assert len(faces) == 2

    def near(result, placement):
        return np.abs(result.points3 - stage.expected_points(*placement)).max() < 5

    assert near(detector.detect(frame, choice="largest"), big)
    assert near(detector.detect(frame, choice="index", index=0), big)  # leftmost
    assert near(detector.detect(frame, choice="index", index=1), small)
    assert detector.detect(frame, choice="index", index=2) is None
    assert near(detector.detect(frame, choice="position", position=(380, 190)), small)


def _run(stage, frames, *overrides, detector=None):
    processor = VideoFaceProcessor(resolution=256, detector=detector, config=_config(*overrides))
    results = list(processor.process(iter(frames), batch_size=8))
    return processor, results


def test_video_gaps_bridged_or_marked(stage, detector):
    """Face 8 frames, blank 3 (bridged), face 6, blank 7 (too long: no face), face 4, blank 2 at the end."""
    path = [(angle, 1.0, (200 + 6 * k, 170 + 2 * k)) for k, angle in enumerate(np.linspace(-8, 8, 40))]
    layout = ["F"] * 8 + ["-"] * 3 + ["F"] * 6 + ["-"] * 7 + ["F"] * 4 + ["-"] * 2
    frames = [stage.frame(path[k]) if kind == "F" else stage.frame() for k, kind in enumerate(layout)]
    processor, results = _run(stage, frames, "gaps.max_bridge=5", detector=detector)

    assert [r.index for r in results] == list(range(len(frames)))
    assert [r.has_face for r in results] == [kind == "F" for kind in layout[:8]] + [True] * 3 + \
        [kind == "F" for kind in layout[11:]]
    bridged = [r.index for r in results if r.bridged]
    assert bridged == [8, 9, 10]
    stats = processor.stats
    assert (stats.frames, stats.with_face, stats.bridged, stats.without_face) == (30, 18, 3, 9)
    assert stats.no_face_indices == list(range(17, 24)) + [28, 29]

    for r in results:
        if r.has_face:
            assert r.face.shape == (3, 256, 256) and r.affine_matrix.shape == (1, 2, 3)
        else:
            assert r.face is None and r.affine_matrix is None and r.frame is frames[r.index]
    # bridged points lie on the way from the last face before the gap to the first one after it
    before, after = results[7].points3, results[11].points3
    for r in results[8:11]:
        low, high = np.minimum(before, after) - 2, np.maximum(before, after) + 2
        assert np.all(r.points3 >= low) and np.all(r.points3 <= high)
    # the bridged crops still show a face where the template expects it (eyes row darker than cheeks)
    face = results[9].face.float().mean(dim=0)
    assert face[100:140].mean() > 60

    # restore: face-less frames pass through untouched; faced frames change only near the face
    generated = torch.stack([
        (r.face.float() / 127.5 - 1) if r.has_face else torch.zeros(3, 256, 256) for r in results
    ])
    restored = processor.restore(np.stack(frames), generated, results)
    for r in results:
        if not r.has_face:
            assert np.array_equal(restored[r.index], frames[r.index])
    k = 12
    changed = np.abs(restored[k].astype(int) - frames[k].astype(int)).max(axis=2) > 0
    ys, xs = np.nonzero(changed)
    x1, y1, x2, y2 = results[k].face_box
    assert xs.min() > x1 - 60 and xs.max() < x2 + 60 and ys.min() > y1 - 80 and ys.max() < y2 + 60


def test_no_bridging_when_disabled(stage, detector):
    frames = [stage.frame((0, 1.0, (240, 180)))] * 3 + [stage.frame()] * 2 + [stage.frame((0, 1.0, (240, 180)))] * 2
    processor, results = _run(stage, frames, "gaps.max_bridge=0", detector=detector)
    assert [r.has_face for r in results] == [True] * 3 + [False] * 2 + [True] * 2
    assert processor.stats.bridged == 0


def test_tracked_face_does_not_jump(stage, detector):
    """A small face is followed; a bigger one appears later. `largest` switches at its next keyframe,
    `tracked` stays with the first person (also through a frame showing both)."""
    small = (0, 0.8, (360, 200))
    big = (0, 1.25, (130, 180))
    frames = [stage.frame(small)] * 4 + [stage.frame(small, big)] * 6
    expected_small = stage.expected_points(*small)
    expected_big = stage.expected_points(*big)

    _, tracked = _run(stage, frames, "detector.choice=tracked", "tracking.detect_every=3", detector=detector)
    assert all(r.has_face for r in tracked)
    assert all(np.abs(r.points3 - expected_small).max() < 5 for r in tracked)
    assert len({r.track_id for r in tracked}) == 1

    _, largest = _run(stage, frames, "detector.choice=largest", "tracking.detect_every=3", detector=detector)
    assert all(np.abs(r.points3 - expected_small).max() < 5 for r in largest[:6])  # until keyframe 6
    assert all(np.abs(r.points3 - expected_big).max() < 8 for r in largest[7:])
    assert largest[-1].track_id != largest[0].track_id


def test_detection_stride_saves_detector_runs(stage, detector):
    frames = [stage.frame((0, 1.0, (200 + 3 * k, 180))) for k in range(10)]
    every, _ = _run(stage, frames, "tracking.detect_every=1", detector=detector)
    strided, res = _run(stage, frames, "tracking.detect_every=5", detector=detector)
    assert every.stats.detector_runs == 10 and strided.stats.detector_runs == 2
    for k, r in enumerate(res):
        assert np.abs(r.points3 - stage.expected_points(0, 1.0, (200 + 3 * k, 180))).max() < 2.5  # rounded


def test_no_detector_run_where_the_speaker_guide_has_no_face(stage, detector):
    """`speaker` guides the tracker with the chosen face's box per frame; in a shot where nobody speaks (no box)
    nothing could be taken, so the detector does not run there at all, and the face is edited only where guided."""
    frames = [stage.frame((0, 1.0, (240, 180)))] * 10
    box = detector.detect(frames[0]).box
    guide = np.full((10, 4), np.nan)
    guide[6:] = box
    processor = VideoFaceProcessor(resolution=256, detector=detector, config=_config("tracking.detect_every=5"),
                                   face_choice=FaceChoice("tracked", 0, None, guide_boxes=guide))
    results = list(processor.process(iter(frames), batch_size=8))
    assert [r.has_face for r in results] == [False] * 6 + [True] * 4
    assert processor.stats.detector_runs == 1  # frame 6 only; frames 7-9 follow it by its landmarks


def test_align_video_accepts_chunks(stage):
    chunk = np.stack([stage.frame((0, 1.0, (240, 180)))] * 3)
    results = list(align_video([chunk, chunk[:2]], resolution=256))
    assert [r.index for r in results] == [0, 1, 2, 3, 4] and all(r.has_face for r in results)
    boxes = [r.face_box for r in results]
    assert min(box_iou(boxes[0], b) for b in boxes) > 0.95
