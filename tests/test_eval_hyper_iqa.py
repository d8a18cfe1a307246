"""HyperIQA: checkpoint layout (manifest), target network (golden), scoring API used by the data pipeline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eval.hyper_iqa import KONIQ_ARGS, HyperIQAScorer, HyperNet, TargetNet, center_crop, quality_frame_indices
from latentsync.checkpoint import CheckpointError
from tests.helpers import shared_fixture, shared_tensors, state_dict_layout, write_video

SCALAR_RTOL = 1e-5


manifest = shared_fixture("reference", "aux", "hyperiqa_manifest.json")


@pytest.fixture(scope="module")
def random_scorer():
    torch.manual_seed(0)
    return HyperIQAScorer(model=HyperNet(**KONIQ_ARGS))


@pytest.mark.needs_shared
def test_state_dict_matches_manifest(manifest):
    with torch.device("meta"):
        model = HyperNet(**KONIQ_ARGS)
    state = model.state_dict()
    layout = state_dict_layout(state)
    assert layout == manifest["state_dict"]
    assert len(state) == manifest["num_state_dict_keys"] == 355
    floats = {k: v.numel() for k, v in state.items() if v.dtype.is_floating_point}
    assert sum(floats.values()) == manifest["num_params_total"]  # parameters + BN running statistics
    assert sum(n for k, n in floats.items() if k.startswith("res.")) == manifest["num_params_backbone_res"]
    assert sorted(k for k in state if not state[k].dtype.is_floating_point or "running" in k) == sorted(
        manifest["state_dict_buffer_keys"])


@pytest.mark.needs_shared
def test_hypernet_output_shapes_match_manifest(manifest, random_scorer):
    with torch.no_grad():
        paras = random_scorer.model(torch.zeros(3, 3, 224, 224))
    assert {k: list(v.shape) for k, v in paras.items()} == manifest["hypernet_output_shapes_B3"]


@pytest.mark.needs_shared
@pytest.mark.parametrize("case_name", ["B3", "B1"])
def test_target_network_matches_golden(case_name):
    golden = shared_tensors("reference", "aux", "hyperiqa_targetnet_golden.pt")
    case = golden["cases"][case_name]
    paras = case["paras"]
    pred = TargetNet(paras)(paras["target_in_vec"])
    assert pred.shape == case["pred"].shape  # (3,) for B3, 0-d for B1 (the final squeeze)
    torch.testing.assert_close(pred, case["pred"], rtol=SCALAR_RTOL, atol=1e-4)
    assert pred.mean().item() == pytest.approx(case["quality_score"], rel=SCALAR_RTOL)


def test_center_crop_follows_torchvision_rules():
    images = torch.arange(256 * 256, dtype=torch.float32).reshape(1, 1, 256, 256)
    torch.testing.assert_close(center_crop(images, 224), images[..., 16:240, 16:240])
    odd = torch.ones(1, 1, 225, 300)
    assert center_crop(odd, 224).shape == (1, 1, 224, 224)
    small = center_crop(torch.ones(1, 1, 200, 224), 224)  # zero padding when smaller, like CenterCrop
    assert small.shape == (1, 1, 224, 224) and small[0, 0, :12].sum() == 0 and small[0, 0, 12:212].min() == 1


def test_scoring_api(random_scorer):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 256, 256, 3), dtype=np.uint8)
    per_frame = random_scorer.predict(frames)
    assert per_frame.shape == (3,)
    score = random_scorer.score_frames(frames)
    assert math.isfinite(score) and score == pytest.approx(per_frame.mean().item(), rel=1e-6)
    single = random_scorer.predict(frames[1])  # B = 1 path (the original's squeeze quirk)
    torch.testing.assert_close(single, per_frame[1:2], atol=1e-4, rtol=1e-5)
    assert quality_frame_indices(75) == [0, 37, 74]
    with pytest.raises(ValueError, match="RGB"):
        random_scorer.prepare(np.zeros((2, 224, 224)))


def test_checkpoint_round_trip_and_errors(tmp_path, random_scorer):
    path = tmp_path / "koniq_pretrained.pkl"
    torch.save(random_scorer.model.state_dict(), path)
    loaded = HyperIQAScorer(path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.state_dict().values(),
                                                  random_scorer.model.state_dict().values(), strict=True))
    torch.save({"res.conv1.weight": torch.zeros(1)}, tmp_path / "bad.pkl")
    with pytest.raises(CheckpointError, match="does not fit"):
        HyperIQAScorer(tmp_path / "bad.pkl")
    with pytest.raises(CheckpointError, match="not found"):
        HyperIQAScorer(tmp_path / "absent.pkl")


def test_score_video_reads_first_middle_last(random_scorer, tmp_path):
    from latentsync.utils.media import VideoReader

    rng = np.random.default_rng(1)
    frames = np.stack([np.full((256, 256, 3), 20 * k, np.uint8) + rng.integers(0, 40, (256, 256, 3), dtype=np.uint8)
                       for k in range(9)])
    path = write_video(tmp_path / "clip.mp4", [frames], 25)
    decoded = VideoReader(path).get_frames([0, 4, 8])
    assert random_scorer.score_video(path) == pytest.approx(random_scorer.score_frames(decoded), rel=1e-6)
