"""FVD: the official Fréchet arithmetic (golden), self-distance ~ 0, face-clip extraction, I3D plumbing."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
import torch

from eval.fvd import I3D_KWARGS, FVDSampleSizeWarning, compute_fvd, i3d_features, load_i3d
from tests.helpers import shared_file, shared_fixture, write_video

SCALAR_RTOL = 1e-5


golden = shared_fixture("reference", "aux", "fvd_golden.pt")


@pytest.mark.needs_shared
@pytest.mark.parametrize("case_name", ["n40_d400", "n500_d64"])
def test_frechet_distance_matches_golden(golden, case_name):
    case = golden["cases"][case_name]
    fake, real = case["feats_fake"].numpy(), case["feats_real"].numpy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        forward, swapped = compute_fvd(fake, real), compute_fvd(real, fake)
    assert forward == pytest.approx(case["fvd_fake_real"], rel=SCALAR_RTOL)
    assert swapped == pytest.approx(case["fvd_real_fake"], rel=SCALAR_RTOL)
    few = [w for w in caught if issubclass(w.category, FVDSampleSizeWarning)]
    assert bool(few) == (fake.shape[0] <= fake.shape[1])  # 40 videos < 400 features warns, 500 > 64 does not


@pytest.mark.needs_shared
def test_set_against_itself_is_zero(golden):
    for case in golden["cases"].values():
        feats = case["feats_real"].numpy()
        scale = np.trace(np.cov(feats, rowvar=False))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FVDSampleSizeWarning)
            assert abs(compute_fvd(feats, feats)) < 1e-6 * scale
    well_conditioned = golden["cases"]["n500_d64"]["feats_real"].numpy()
    shifted = compute_fvd(well_conditioned, well_conditioned + 0.5)  # same covariance: only the mean term remains
    assert shifted == pytest.approx(0.25 * well_conditioned.shape[1], rel=1e-4)


def test_different_sets_are_positive_and_bad_inputs_are_rejected():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 16)).astype(np.float32)
    b = (rng.normal(size=(300, 16)) * 1.5 + 0.2).astype(np.float32)
    assert compute_fvd(a, b) > 1.0
    assert abs(compute_fvd(a, a)) < 1e-9
    with pytest.raises(ValueError, match="same d"):
        compute_fvd(a, b[:, :8])
    with pytest.raises(ValueError, match="at least 2 videos"):
        compute_fvd(a[:1], b[:1])


class StandInI3D(torch.nn.Module):
    """A tiny feature extractor with the I3D TorchScript call signature (records what it was given)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, rescale=True, resize=True, return_features=False):
        self.calls.append((tuple(x.shape), dict(rescale=rescale, resize=resize, return_features=return_features)))
        pooled = torch.nn.functional.adaptive_avg_pool3d(x, (2, 2, 2)).flatten(1)  # (N, C*8)
        return torch.cat([pooled, x.flatten(2).std(dim=2)], dim=1)


def test_i3d_features_feed_i3d_like_the_original():
    """What the original's compute_our_fvd(fake, real) computes: compute_fvd over the I3D features of each set."""
    rng = torch.Generator().manual_seed(0)
    real = torch.rand(30, 16, 32, 32, 3, generator=rng)
    fake = (real * 0.6 + 0.3).clamp(0, 1)
    i3d = StandInI3D()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FVDSampleSizeWarning)
        assert abs(compute_fvd(i3d_features(i3d, real), i3d_features(i3d, real))) < 1e-6
        assert compute_fvd(i3d_features(i3d, fake), i3d_features(i3d, real)) > 1e-3
    assert i3d.calls[0] == ((16, 3, 16, 32, 32), I3D_KWARGS)  # (N, C, F, H, W), batches of 16, raw features


def test_missing_i3d_checkpoint_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="i3d_torchscript.pt"):
        load_i3d(tmp_path / "i3d_torchscript.pt")


# --------------------------------------------------------------------------- face clips from videos


def _write(path, frames):
    return write_video(path, [np.ascontiguousarray(frames)], 25)


@pytest.fixture(scope="module")
def demo_frames():
    from latentsync.utils.media import VideoReader

    reader = VideoReader(shared_file("media", "demo1_video.mp4"))
    return np.stack([cv2.resize(f, (270, 480)) for f in reader.get_frames(range(0, 120, 2))])


@pytest.mark.needs_shared
def test_eval_fvd_on_face_videos(demo_frames, tmp_path):
    from eval.eval_fvd import FaceClipExtractor, eval_fvd

    real_dir, fake_dir = tmp_path / "real", tmp_path / "fake"
    real_dir.mkdir()
    fake_dir.mkdir()
    for k in range(3):
        clip = demo_frames[k * 10 : k * 10 + 40]
        _write(real_dir / f"v{k}.mp4", clip)
        degraded = np.stack([cv2.GaussianBlur(f, (0, 0), 4) // 2 + 60 for f in clip])
        _write(fake_dir / f"v{k}.mp4", degraded)

    extractor = FaceClipExtractor()
    clip = extractor.clip(real_dir / "v0.mp4")
    assert clip.shape == (16, 224, 224, 3) and clip.dtype == np.uint8
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        same = eval_fvd(real_dir, real_dir, i3d=StandInI3D())
        different = eval_fvd(real_dir, fake_dir, i3d=StandInI3D())
    assert abs(same) < 1e-6
    assert different > 1e-3
    assert any(issubclass(w.category, FVDSampleSizeWarning) for w in caught)  # 3 videos, 24-dim features


@pytest.mark.needs_shared
def test_short_video_and_faceless_frames_are_reported(demo_frames, tmp_path):
    from eval.eval_fvd import FaceClipExtractor, FVDClipError

    extractor = FaceClipExtractor()
    short = _write(tmp_path / "short.mp4", demo_frames[:30])
    with pytest.raises(FVDClipError, match="30 frames.*at least 36"):
        extractor.clip(short)
    blank = demo_frames[:40].copy()
    blank[25] = 128
    with pytest.raises(FVDClipError, match="no face detected in frame 25"):
        extractor.clip(_write(tmp_path / "blank.mp4", blank))
