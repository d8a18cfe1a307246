"""Evaluation SyncNet ("S") and the LSE-C / LSE-D / AV-offset arithmetic against the official goldens."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from eval.settings import SyncNetProtocol
from eval.syncnet import S, SyncNetEval, calc_pdist, sync_scores
from eval.syncnet.features import mfcc_matrix, num_windows
from latentsync.checkpoint import CheckpointError
from tests.helpers import shared_file, shared_fixture, shared_json, state_dict_layout

FEATURE_ATOL = 1e-4
SCALAR_RTOL = 1e-5


golden = shared_fixture("reference", "aux", "syncnet_eval_small_golden.pt")


@pytest.fixture(scope="module")
def small_syncnet(golden, tmp_path_factory):
    path = tmp_path_factory.mktemp("syncnet") / "small.pt"
    torch.save(golden["state_dict"], path)
    model = SyncNetEval(width_divisor=json.loads(golden["config"])["width_divisor"])
    model.loadParameters(path)
    return model


@pytest.mark.needs_shared
def test_full_model_matches_manifest():
    manifest = shared_json("reference", "aux", "syncnet_eval_manifest.json")
    with torch.device("meta"):
        model = S(num_layers_in_fc_layers=1024)
    layout = state_dict_layout(model.state_dict())
    assert layout == manifest["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == manifest["num_params"] == 13_631_616
    wrapper = SyncNetEval(width_divisor=8)  # holds the net as __S__, like the original wrapper
    assert next(iter(wrapper.state_dict())) == manifest["wrapper_state_dict_first_key"] == "__S__.netcnnaud.0.weight"


@pytest.mark.needs_shared
def test_reduced_model_layout_matches_golden_replacements(golden):
    model = S(width_divisor=4)
    modules = dict(model.named_modules())
    for spec in json.loads(golden["replacements"]):
        module = modules[spec["module"]]
        assert type(module).__name__ == spec["type"]
        if spec["type"].startswith("Conv"):
            assert (module.in_channels, module.out_channels) == (spec["in_channels"], spec["out_channels"])
            assert list(module.kernel_size) == spec["kernel_size"] and list(module.stride) == spec["stride"]
            assert list(module.padding) == spec["padding"]
        elif spec["type"] == "Linear":
            assert (module.in_features, module.out_features) == (spec["in_features"], spec["out_features"])
        else:
            assert module.num_features == spec["num_features"] and module.eps == spec["eps"]


@pytest.mark.needs_shared
def test_forward_matches_golden(golden, small_syncnet):
    net = small_syncnet.net
    with torch.no_grad():
        lips = golden["lip_input_uint8"].float()
        torch.testing.assert_close(net.forward_lip(lips), golden["forward_lip"], atol=FEATURE_ATOL, rtol=0)
        torch.testing.assert_close(net.forward_aud(golden["aud_input"]), golden["forward_aud"], atol=FEATURE_ATOL, rtol=0)
        torch.testing.assert_close(net.forward_lipfeat(lips), golden["forward_lipfeat"], atol=FEATURE_ATOL, rtol=0)


@pytest.mark.needs_shared
def test_mfcc_matches_golden(golden):
    from scipy.io import wavfile

    wav = shared_file("reference", "test_audio.wav")
    assert hashlib.sha256(wav.read_bytes()).hexdigest() == golden["test_audio_sha256"]
    rate, audio = wavfile.read(wav)
    assert audio.dtype == np.int16 and rate == 16000
    np.testing.assert_allclose(mfcc_matrix(audio, rate), golden["test_audio_mfcc"].numpy(), atol=1e-8, rtol=0)


@pytest.mark.needs_shared
def test_calc_pdist_matches_golden(golden):
    torch.testing.assert_close(calc_pdist(golden["pdist_feat1"], golden["pdist_feat2"]), golden["pdist_vshift10"],
                               atol=FEATURE_ATOL, rtol=0)


@pytest.mark.needs_shared
def test_offset_and_confidence_arithmetic_matches_golden(golden):
    scores = sync_scores(golden["synth_video_feats"], golden["synth_audio_feats"], vshift=golden["synth_vshift"])
    assert scores.av_offset == golden["synth_av_offset"] == golden["synth_shift_rows"] == 3
    assert scores.min_dist == pytest.approx(golden["synth_min_dist"], rel=SCALAR_RTOL)
    assert scores.confidence == pytest.approx(golden["synth_conf"], rel=SCALAR_RTOL)
    torch.testing.assert_close(scores.mean_dists, golden["synth_mean_dists"], atol=FEATURE_ATOL, rtol=0)
    np.testing.assert_allclose(scores.framewise_conf, golden["synth_framewise_conf"].numpy(), atol=FEATURE_ATOL)


class CallOrderStandIn(nn.Module):
    """Returns stored feature rows in call order, like the stand-in the golden was made with."""

    def __init__(self, video_rows, audio_rows):
        super().__init__()
        self.video_rows, self.audio_rows = video_rows, audio_rows
        self.lip_batches = []

    def forward_lip(self, x):
        self.lip_batches.append(list(x.shape))
        out, self.video_rows = self.video_rows[: len(x)], self.video_rows[len(x) :]
        return out

    def forward_aud(self, x):
        out, self.audio_rows = self.audio_rows[: len(x)], self.audio_rows[len(x) :]
        return out


@pytest.mark.needs_shared
def test_windowing_and_sign_match_golden_with_stand_in(golden):
    model = SyncNetEval(width_divisor=4)
    stand_in = CallOrderStandIn(golden["synth_video_feats"], golden["synth_audio_feats"])
    model._modules["__S__"] = stand_in
    frames = np.zeros((golden["synth_num_frames_given"], 224, 224, 3), np.uint8)
    audio = np.zeros(golden["synth_num_frames_given"] * 640, np.int16)
    scores = model.evaluate_arrays(frames, audio)
    assert stand_in.lip_batches == json.loads(golden["synth_lip_batches"])
    assert scores.av_offset == 3
    assert scores.confidence == pytest.approx(golden["synth_conf"], rel=SCALAR_RTOL)


@pytest.mark.needs_shared
def test_end_to_end_evaluate_matches_golden(golden, small_syncnet):
    frames, audio = golden["e2e_frames_bgr"].numpy(), golden["e2e_audio_int16"].numpy()
    im_feat, cc_feat = small_syncnet.embed(frames, audio)
    assert im_feat.shape == golden["e2e_im_feat"].shape == (77, 1024)
    torch.testing.assert_close(im_feat, golden["e2e_im_feat"], atol=FEATURE_ATOL, rtol=0)
    torch.testing.assert_close(cc_feat, golden["e2e_cc_feat"], atol=FEATURE_ATOL, rtol=0)
    scores = sync_scores(im_feat, cc_feat, vshift=small_syncnet.protocol.vshift)
    assert small_syncnet.protocol.vshift == golden["e2e_vshift"]
    assert scores.av_offset == golden["e2e_av_offset"] == 15  # the zero-padding edge effect of random weights
    assert scores.min_dist == pytest.approx(golden["e2e_min_dist"], rel=SCALAR_RTOL)
    assert scores.confidence == pytest.approx(golden["e2e_conf"], rel=SCALAR_RTOL)
    torch.testing.assert_close(scores.mean_dists, golden["e2e_mean_dists"], atol=FEATURE_ATOL, rtol=0)


def test_window_count_drops_last_window():
    protocol = SyncNetProtocol.from_eval_config()
    assert num_windows(90, 52800, protocol) == 77  # min(90, 52800 // 640) - 5
    assert num_windows(5, 10_000, protocol) == 0


# --------------------------------------------------------------------------- planted offsets


class OracleSyncNet(nn.Module):
    """Controlled embeddings: the lip stream embeds the 5 frame brightnesses, the audio stream the 5 frame
    loudnesses (half of MFCC c0 = log amplitude + const, read from the two columns inside each frame). Both are
    standardised and projected by the same random matrix, so matched windows give identical embeddings."""

    def __init__(self, dim=64, seed=0):
        super().__init__()
        self.proj = torch.randn(5, dim, generator=torch.Generator().manual_seed(seed))

    @staticmethod
    def _embed(pattern):
        pattern = (pattern - pattern.mean(1, keepdim=True)) / pattern.std(1, keepdim=True)
        return pattern

    def forward_lip(self, x):  # (B, 3, 5, 224, 224)
        return self._embed(x.mean(dim=(1, 3, 4))) @ self.proj

    def forward_aud(self, x):  # (B, 1, 13, 20)
        c0 = x[:, 0, 0].reshape(-1, 5, 4)[:, :, :2].mean(2) / 2
        return self._embed(c0) @ self.proj


def _oracle_clip(levels_video, levels_audio):
    """Frames whose brightness follows `levels_video`, audio whose log-amplitude follows `levels_audio`."""
    frames = np.repeat(np.round(40 + 150 * levels_video).astype(np.uint8), 224 * 224 * 3).reshape(-1, 224, 224, 3)
    t = np.arange(640) / 16000
    tone = np.sin(2 * np.pi * 440 * t)
    audio = np.concatenate([np.exp(2.0 * lv) * 3000 * tone for lv in levels_audio])
    return frames, audio.astype(np.int16)


@pytest.mark.parametrize("shift", [-11, -4, 0, 2, 7])
def test_planted_offset_is_recovered_and_other_audio_drops_confidence(shift):
    rng = np.random.default_rng(abs(shift) + 1)
    num_frames, vshift = 70, 15
    content = rng.uniform(0, 1, num_frames + 2 * vshift)
    video_levels = content[vshift : vshift + num_frames]
    # Audio frame t carries what the video shows at t + shift (audio leads by `shift` frames).
    audio_levels = content[vshift + shift : vshift + shift + num_frames]
    model = SyncNetEval(width_divisor=4)
    model._modules["__S__"] = OracleSyncNet()
    frames, audio = _oracle_clip(video_levels, audio_levels)
    matched = model.evaluate_arrays(frames, audio)
    assert matched.av_offset == shift

    other_levels = rng.uniform(0, 1, num_frames)
    _, other_audio = _oracle_clip(video_levels, other_levels)
    unrelated = model.evaluate_arrays(frames, other_audio)
    assert unrelated.confidence < 0.5 * matched.confidence
    assert unrelated.min_dist > matched.min_dist


def test_sync_scores_rejects_mismatched_features():
    with pytest.raises(ValueError, match="same shape"):
        sync_scores(torch.zeros(4, 8), torch.zeros(5, 8), vshift=2)


# --------------------------------------------------------------------------- checkpoint files


def test_load_accepts_converted_files_and_rejects_bad_ones(tmp_path):
    source = S(width_divisor=8)
    state = source.state_dict()
    model = SyncNetEval(width_divisor=8)

    torch.save({"state_dict": {f"__S__.{k}": v for k, v in state.items()}}, tmp_path / "wrapped.pt")
    model.loadParameters(tmp_path / "wrapped.pt")
    assert all(torch.equal(model.net.state_dict()[k], v) for k, v in state.items())

    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items() if not k.endswith("num_batches_tracked")},
              str(tmp_path / "converted.safetensors"))
    SyncNetEval(width_divisor=8).loadParameters(tmp_path / "converted.safetensors")

    torch.save({k: v for k, v in state.items() if k != "netfclip.3.bias"}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="missing keys.*netfclip.3.bias"):
        model.loadParameters(tmp_path / "partial.pt")

    torch.save({**state, "netfclip.3.bias": torch.zeros(1)}, tmp_path / "broadcast.pt")
    with pytest.raises(CheckpointError, match="shape mismatches"):
        model.loadParameters(tmp_path / "broadcast.pt")


def test_pickled_model_object_is_refused_with_conversion_hint(tmp_path):
    path = tmp_path / "syncnet_v2.model"
    with open(path, "wb") as f:
        torch.save(S(width_divisor=8), f, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="Convert it once"):
        SyncNetEval(width_divisor=8).loadParameters(path)
    with pytest.raises(CheckpointError, match="not found"):
        SyncNetEval(width_divisor=8).loadParameters(tmp_path / "absent.model")
