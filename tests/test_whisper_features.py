"""Whisper audio features with a tiny random checkpoint and a synthetic signal (no reference data needed).

The expected values come from independent implementations written here: whisper's own `AudioEncoder.forward`
with hooks, run over the official 30 s seek loop, and the official per-frame index formula as a plain loop.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch
from whisper.audio import N_FRAMES, log_mel_spectrogram, pad_or_trim

from latentsync.whisper.audio2feature import Audio2Feature, boundary_centred_plan, official_plan
from latentsync.whisper.encoder import encoder_layer_outputs, read_whisper_checkpoint
from latentsync.whisper.tiny import make_random_whisper_checkpoint, synthetic_audio

SR = 16000


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return make_random_whisper_checkpoint(tmp_path_factory.mktemp("whisper") / "tiny_random.pt", seed=3)


@pytest.fixture(scope="module")
def encoder(tiny_ckpt):
    return Audio2Feature(tiny_ckpt, device="cpu")


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "short.wav"
    soundfile.write(path, synthetic_audio(3.3, seed=1), SR, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def long_samples():
    """33 s: crosses the 30 s window boundary. The loudest part is early, so the global log-mel max is there."""
    x = synthetic_audio(33.0, seed=2) * 0.5
    x[SR * 2 : SR * 3] *= 2.0
    return x


def reference_features(encoder_module, samples: np.ndarray) -> torch.Tensor:
    """The documented algorithm through whisper's own forward: hooks collect the first block's input (conv stem +
    positional embedding) and every block's output; windows of 3000 mel frames, int(len/2) rows kept each."""
    captured = []
    hooks = [encoder_module.blocks[0].register_forward_pre_hook(lambda m, args: captured.append(args[0]))]
    hooks += [b.register_forward_hook(lambda m, args, out: captured.append(out)) for b in encoder_module.blocks]
    mel = log_mel_spectrogram(torch.from_numpy(samples))
    pieces = []
    try:
        with torch.no_grad():
            for seek in range(0, mel.shape[-1], N_FRAMES):
                end = min(seek + N_FRAMES, mel.shape[-1])
                captured.clear()
                encoder_module(pad_or_trim(mel[:, seek : seek + N_FRAMES], N_FRAMES)[None])
                layers = torch.stack(captured, dim=2)[0]  # (1500, L+1, D)
                pieces.append(layers[: (end - seek) // 2])
    finally:
        for h in hooks:
            h.remove()
    return torch.cat(pieces)


def reference_slice(feature_array, vid_idx, fps, audio_feat_length):
    """The official get_sliced_feature, as a loop."""
    centre = int(vid_idx * 50 / fps)
    idx = [min(max(i, 0), len(feature_array) - 1)
           for i in range(centre - audio_feat_length[0] * 2, centre + (audio_feat_length[1] + 1) * 2)]
    return torch.cat([feature_array[i] for i in idx]).reshape(-1, feature_array.shape[-1]), idx


def reference_chunk_count(num_features, fps):
    i = 0
    while True:
        start = int(i * (50.0 / fps))
        i += 1
        if start > num_features:
            return i


# ----------------------------------------------------------------------------------------------- encoder


def test_layer_outputs_match_whisper_forward(encoder):
    mel = torch.randn(2, 80, N_FRAMES, generator=torch.Generator().manual_seed(0))
    layers = encoder_layer_outputs(encoder.encoder, mel)
    assert layers.shape == (2, 1500, encoder.dims.n_audio_layer + 1, encoder.dims.n_audio_state)
    with torch.no_grad():
        final = encoder.encoder(mel)  # whisper's forward ends with ln_post
    torch.testing.assert_close(encoder.encoder.ln_post(layers[:, :, -1]), final, atol=1e-5, rtol=1e-5)


def test_checkpoint_positional_embedding_is_kept(tiny_ckpt, encoder):
    stored = read_whisper_checkpoint(tiny_ckpt)["model_state_dict"]["encoder.positional_embedding"]
    assert torch.equal(encoder.encoder.positional_embedding, stored.float())


def test_only_encoder_is_built(encoder):
    assert not any(name.startswith("decoder") for name, _ in encoder.encoder.named_parameters())


# ----------------------------------------------------------------------------------------------- audio2feat


def test_audio2feat_short_matches_reference(encoder, short_wav):
    samples = soundfile.read(short_wav, dtype="int16")[0].astype(np.float32) / 32768
    feat = encoder.audio2feat(str(short_wav))
    assert feat.shape == (len(samples) // 320, 3, 64) and feat.dtype == torch.float32
    torch.testing.assert_close(feat, reference_features(encoder.encoder, samples), atol=1e-4, rtol=0)
    assert torch.equal(encoder.audio2feat(samples), feat)  # array input == file input


def test_audio2feat_long_crosses_window_boundary(encoder, long_samples):
    feat = encoder.audio2feat(long_samples)
    assert feat.shape[0] == len(long_samples) // 320 > 1500
    torch.testing.assert_close(feat, reference_features(encoder.encoder, long_samples), atol=1e-4, rtol=0)


def test_window_batch_size_does_not_change_features(tiny_ckpt, encoder, long_samples):
    one_at_a_time = Audio2Feature(tiny_ckpt, device="cpu", window_batch_size=1)
    torch.testing.assert_close(one_at_a_time.audio2feat(long_samples), encoder.audio2feat(long_samples),
                               atol=1e-5, rtol=0)


def test_global_log_mel_max(encoder, long_samples):
    """The log-mel floor (max - 8) is global: making the second window louder changes the first window."""
    louder = long_samples.copy()
    louder[SR * 31 :] = np.clip(louder[SR * 31 :] * 4.0, -1, 1)
    a, b = encoder.audio2feat(long_samples), encoder.audio2feat(louder)
    assert (a[:1400] - b[:1400]).abs().max() > 1e-3


def test_stereo_and_int16_arrays(encoder, short_wav):
    pcm = soundfile.read(short_wav, dtype="int16")[0]
    mono = encoder.audio2feat(pcm)  # int16 -> /32768
    stereo = encoder.audio2feat(np.stack([pcm, pcm], axis=1).astype(np.float32) / 32768)
    assert torch.equal(mono, stereo)


# ----------------------------------------------------------------------------------------------- slicing


@pytest.mark.parametrize("fps", [25, 30, 29.97, 24])
@pytest.mark.parametrize("num_features", [3, 165, 1850])
def test_chunks_follow_official_index_formula(encoder, fps, num_features):
    feat = torch.randn(num_features, 3, 64, generator=torch.Generator().manual_seed(num_features))
    chunks = encoder.feature2chunks(feature_array=feat, fps=fps)
    assert len(chunks) == reference_chunk_count(num_features, fps)
    for i in sorted({0, 1, 2, len(chunks) // 2, len(chunks) - 2, len(chunks) - 1}):
        expected, expected_idx = reference_slice(feat, i, fps, [2, 2])
        got, idx = encoder.get_sliced_feature(feat, i, fps=fps)
        assert idx == expected_idx
        assert torch.equal(got, expected) and torch.equal(chunks[i], expected)


def test_chunk_layout_is_time_major(encoder):
    feat = torch.arange(20 * 3 * 64, dtype=torch.float32).reshape(20, 3, 64)
    chunk, idx = encoder.get_sliced_feature(feat, 5)
    assert chunk.shape == (30, 64)
    for j in range(10):
        for layer in range(3):
            assert torch.equal(chunk[j * 3 + layer], feat[idx[j], layer])


def test_chunk_count_at_25fps(encoder):
    assert len(encoder.feature2chunks(torch.zeros(165, 3, 64), fps=25)) == 165 // 2 + 2


def test_crop_overlap_audio_window(encoder):
    feat = torch.randn(1850, 3, 64, generator=torch.Generator().manual_seed(1))
    for start in (0, 3, 745, 917):
        crop = encoder.crop_overlap_audio_window(feat, start)
        assert crop.shape == (16, 30, 64)
        expected = torch.stack([reference_slice(feat, i, 25, [2, 2])[0] for i in range(start, start + 16)])
        assert torch.equal(crop, expected)


def test_other_audio_feat_length(tiny_ckpt):
    enc = Audio2Feature(tiny_ckpt, device="cpu", num_frames=5, audio_feat_length=[1, 3])
    feat = torch.randn(100, 3, 64, generator=torch.Generator().manual_seed(2))
    assert enc.crop_overlap_audio_window(feat, 7).shape == (5, 2 * (1 + 3 + 1) * 3, 64)
    got, idx = enc.get_sliced_feature(feat, 7)
    expected, expected_idx = reference_slice(feat, 7, 25, [1, 3])
    assert idx == expected_idx and torch.equal(got, expected)


# ----------------------------------------------------------------------------------------------- windows


def test_official_plan_layout():
    plan = official_plan(3700)
    assert plan.num_features == 1850 and list(plan.starts) == [0, 3000]
    assert plan.window[1499] == 0 and plan.window[1500] == 1 and plan.position[1500] == 0
    assert np.all(plan.weight == 1)


@pytest.mark.parametrize("frames", [2999, 3000, 3001, 3700, 6000, 9500])
def test_boundary_plan_weights_sum_to_one(frames):
    plan = boundary_centred_plan(frames, 375)
    totals = np.bincount(plan.feature, weights=plan.weight, minlength=plan.num_features)
    np.testing.assert_allclose(totals, 1.0)
    assert np.all((plan.position >= 0) & (plan.position < 1500))
    per_feature = np.bincount(plan.feature, minlength=plan.num_features)
    touched = np.flatnonzero(per_feature > 1)
    for t in touched:  # only features within 375 of a boundary with features on both sides
        assert min(abs(t - b) for b in range(1500, plan.num_features, 1500)) < 375


def test_boundary_option_changes_only_features_near_boundary(tiny_ckpt, encoder, long_samples):
    fixed = Audio2Feature(tiny_ckpt, device="cpu", fix_window_boundaries=True)
    default, smooth = encoder.audio2feat(long_samples), fixed.audio2feat(long_samples)
    half = fixed.boundary_half_width
    assert half == 375
    assert torch.equal(default[: 1500 - half + 1], smooth[: 1500 - half + 1])
    assert torch.equal(default[1500 + half :], smooth[1500 + half :])
    assert (default[1500 - 50 : 1500 + 50] - smooth[1500 - 50 : 1500 + 50]).abs().amax() > 1e-2

    def steps(f):  # distance between consecutive features, per layer
        return (f[1:] - f[:-1]).norm(dim=-1)

    d_steps, s_steps = steps(default), steps(smooth)
    typical = d_steps[:1400].quantile(0.99, dim=0)
    assert torch.all(d_steps[1499] > 2 * typical), "the official features should jump at the 30 s boundary"
    assert torch.all(s_steps[1499] < 1.5 * typical), "the option should remove the jump"
    assert torch.all(s_steps.amax(dim=0) < 2 * typical), "the cross-fade should not create a new jump"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fp16_like_official(tiny_ckpt, encoder, long_samples):
    """On CUDA the encoder runs in fp16 (weights cast per op, as whisper does) and the features come out fp16."""
    gpu = Audio2Feature(tiny_ckpt, device="cuda")
    feat = gpu.audio2feat(long_samples)
    assert feat.dtype == torch.float16 and feat.device.type == "cpu"
    reference = encoder.audio2feat(long_samples)
    assert ((feat.float() - reference).norm() / reference.norm()).item() < 1e-2
