"""S3FD face detector: checkpoint layout, head geometry and post-processing against the official goldens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.detectors.s3fd import S3FD
from eval.detectors.s3fd.box_utils import detect, nms_, prior_boxes
from eval.detectors.s3fd.nets import S3FDNet
from latentsync.checkpoint import CheckpointError
from tests.helpers import shared_fixture, state_dict_layout

FEATURE_ATOL = 1e-4
SCALAR_RTOL = 1e-5


manifest = shared_fixture("reference", "aux", "s3fd_manifest.json")
golden = shared_fixture("reference", "aux", "s3fd_postproc_golden.pt")


@pytest.mark.needs_shared
def test_state_dict_matches_manifest(manifest):
    with torch.device("meta"):
        net = S3FDNet()
    layout = state_dict_layout(net.state_dict())
    assert layout == manifest["state_dict"]
    assert sum(p.numel() for p in net.parameters()) == manifest["num_params"]
    fresh = S3FDNet()
    assert [m.weight.detach()[0].item() for m in (fresh.L2Norm3_3, fresh.L2Norm4_3, fresh.L2Norm5_3)] == list(
        manifest["l2norm_init_scales"].values())


@pytest.mark.needs_shared
def test_head_sizes_and_prior_counts_match_manifest(manifest):
    with torch.device("meta"):
        net = S3FDNet()
        for size, expected in manifest["feature_maps_for_input_hw"].items():
            height, width = (int(v) for v in size.split("x"))
            loc, conf, feature_maps = net.heads(torch.empty(1, 3, height, width))
            assert [list(f) for f in feature_maps] == expected["feature_maps"]
            assert loc.shape[1] == conf.shape[1] == expected["num_priors"]
            assert prior_boxes((height, width), feature_maps).shape == (expected["num_priors"], 4)


@pytest.mark.needs_shared
@pytest.mark.parametrize("case_name", ["scale025_th09", "scales025_05_th08"])
def test_detect_faces_reproduces_golden(golden, case_name):
    case = golden["cases"][case_name]
    calls = iter(case["calls"])

    def stand_in_net(x):
        call = next(calls)
        torch.testing.assert_close(x, call["x"], atol=0, rtol=0)  # preprocessing is exact
        feature_maps = [tuple(f) for f in call["feature_maps"].tolist()]
        priors = prior_boxes(tuple(x.shape[2:]), feature_maps)
        torch.testing.assert_close(priors, call["priors"], atol=1e-7, rtol=0)
        out = detect(call["loc"], torch.softmax(call["conf_logits"], dim=-1), priors)
        expected = call["detect_output"]
        assert int((out[0, 1, :, 0] > 0).sum()) == int((expected[0, 1, :, 0] > 0).sum())
        torch.testing.assert_close(out, expected, atol=FEATURE_ATOL, rtol=0)
        return expected  # feed the official tail's output so detect_faces is checked on its own

    boxes = S3FD(net=stand_in_net).detect_faces(golden["image_rgb"].numpy(), conf_th=case["conf_th"],
                                                 scales=case["scales"])
    assert boxes.dtype == np.float64 and boxes.shape == tuple(case["bboxes"].shape)
    np.testing.assert_allclose(boxes, case["bboxes"].numpy(), rtol=SCALAR_RTOL, atol=1e-6)


@pytest.mark.needs_shared
def test_numpy_nms_keeps_exact_indices(golden):
    dets = golden["nms_dets"].numpy()
    assert nms_(dets, 0.1).tolist() == golden["nms_keep_thresh0.1"].tolist()
    assert nms_(dets, 0.5).tolist() == golden["nms_keep_thresh0.5"].tolist()


def test_full_forward_and_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    net = S3FDNet().eval()
    path = tmp_path / "sfd_face.pth"
    torch.save(net.state_dict(), path)
    detector = S3FD(checkpoint=path)
    assert all(torch.equal(a, b) for a, b in zip(detector.net.state_dict().values(), net.state_dict().values(), strict=True))
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    with torch.no_grad():
        out = detector.net(torch.zeros(1, 3, 48, 64))
    assert out.shape == (1, 2, 750, 5) and torch.all(out[:, 0] == 0)
    scores = out[0, 1, :, 0]
    assert torch.all(scores[:-1] >= scores[1:])  # best first, zero rows last
    boxes = detector.detect_faces(image, conf_th=0.0, scales=[0.5])
    assert boxes.ndim == 2 and boxes.shape[1] == 5


def test_wrong_checkpoint_is_reported(tmp_path):
    torch.save({"vgg.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="does not fit"):
        S3FD(checkpoint=tmp_path / "bad.pth")
