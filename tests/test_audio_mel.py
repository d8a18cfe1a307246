"""SyncNet's mel spectrogram (latentsync/utils/audio.py) against syncnet_mel_golden.pt and basic signal facts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from latentsync.config import audio_settings
from latentsync.utils.audio import (
    _preemphasis,
    crop_mel_window,
    mel_frames_per_second,
    mel_window_length,
    melspectrogram,
)
from latentsync.utils.media import read_audio
from latentsync.whisper.tiny import synthetic_audio
from tests.helpers import shared_file, shared_fixture

RTOL = 1e-4  # fixed by the issue


golden = shared_fixture("reference", "syncnet_mel_golden.pt")


@pytest.mark.needs_shared
def test_mel_matches_golden(golden):
    wav = read_audio(shared_file("reference", golden["source_wav"]), sample_rate=16000)
    mel = melspectrogram(wav, audio_settings())
    reference = golden["mel"].numpy()
    assert mel.shape == reference.shape == (80, 1 + len(wav) // 200)
    assert mel.dtype == np.float64
    # Observed: max |diff| 1.8e-15 (the float32 filterbank, as librosa's default, is what makes it exact).
    np.testing.assert_allclose(mel, reference, rtol=RTOL, atol=RTOL * np.abs(reference).max())


@pytest.mark.needs_shared
@pytest.mark.parametrize("start", [0, 3, 10])
def test_crops_match_golden(golden, start):
    mel = torch.from_numpy(melspectrogram(read_audio(shared_file("reference", golden["source_wav"])), audio_settings()))
    crop = crop_mel_window(mel, start, 16, 25, audio_settings())
    expected = golden[f"crop_start{start}"]
    assert crop.shape == expected.shape == (1, 80, golden["mel_window_length"])
    torch.testing.assert_close(crop, expected, rtol=RTOL, atol=RTOL * expected.abs().max().item())


def test_config_values():
    cfg = audio_settings()
    assert (cfg.n_fft, cfg.hop_size, cfg.win_size, cfg.num_mels, cfg.fmin, cfg.fmax) == (800, 200, 800, 80, 55, 7600)
    assert cfg.preemphasis == 0.97 and cfg.max_abs_value == 4.0
    assert mel_frames_per_second(audio_settings()) == 80


def test_preemphasis_is_the_official_filter():
    x = synthetic_audio(0.5, seed=0)
    np.testing.assert_array_equal(_preemphasis(x, 0.97), signal.lfilter([1, -0.97], [1], x))


def test_shape_range_and_silence():
    x = synthetic_audio(2.0, seed=1)
    mel = melspectrogram(x, audio_settings())
    assert mel.shape == (80, 1 + len(x) // 200)
    assert mel.min() >= -4 and mel.max() <= 4 and mel.max() > 0
    assert np.all(melspectrogram(np.zeros(4000, dtype=np.float32), audio_settings()) == -4.0)


def test_sine_peaks_in_its_mel_band():
    import librosa

    t = np.arange(16000) / 16000
    mel = melspectrogram((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), audio_settings())
    centres = librosa.mel_frequencies(n_mels=80 + 2, fmin=55, fmax=7600)[1:-1]
    peak = mel[:, 10:-10].mean(axis=1).argmax()
    assert abs(centres[peak] - 1000) < (centres[peak + 1] - centres[peak - 1])


def test_crop_arithmetic():
    assert mel_window_length(16, 25, audio_settings()) == 52 and mel_window_length(25, 25, audio_settings()) == 80
    mel = np.arange(80 * 300, dtype=np.float64).reshape(80, 300)
    for start, first in ((0, 0), (3, 9), (10, 32), (7, 22)):  # int(80 * start / 25)
        crop = crop_mel_window(mel, start, 16, 25, audio_settings())
        assert crop.shape == (1, 80, 52)
        np.testing.assert_array_equal(crop[0], mel[:, first : first + 52])


def test_mono_only():
    from latentsync.utils.audio import AudioInputError

    with pytest.raises(AudioInputError, match="mono"):
        melspectrogram(np.zeros((2, 1000), dtype=np.float32), audio_settings())
