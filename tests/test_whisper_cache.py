"""The whisper feature cache: keyed by content + model + options, atomic, and self-healing."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile
import torch

from latentsync.whisper.audio2feature import Audio2Feature
from latentsync.whisper.tiny import make_random_whisper_checkpoint, synthetic_audio

SR = 16000


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return make_random_whisper_checkpoint(tmp_path_factory.mktemp("whisper") / "tiny_random.pt", seed=5)


@pytest.fixture
def counting_encoder(tiny_ckpt, tmp_path):
    """An Audio2Feature with a cache whose computations are counted."""
    enc = Audio2Feature(tiny_ckpt, device="cpu", audio_embeds_cache_dir=tmp_path / "cache")
    enc.computations = 0
    compute = enc._compute_features

    def counted(audio):
        enc.computations += 1
        return compute(audio)

    enc._compute_features = counted
    return enc


def write_wav(path, seconds, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, synthetic_audio(seconds, seed=seed), SR, subtype="PCM_16")
    return path


def cache_entries(enc):
    return sorted(p.name for p in enc.cache.directory.iterdir())


def test_same_content_under_two_names_is_one_entry(counting_encoder, tmp_path):
    a = write_wav(tmp_path / "a" / "clip.wav", 1.0, seed=1)
    b = tmp_path / "b" / "renamed_copy.wav"
    b.parent.mkdir()
    shutil.copy(a, b)
    first, second = counting_encoder.audio2feat(str(a)), counting_encoder.audio2feat(str(b))
    assert counting_encoder.computations == 1
    assert len(cache_entries(counting_encoder)) == 1
    assert torch.equal(first, second)


def test_different_files_with_the_same_name_are_two_entries(counting_encoder, tmp_path):
    a = write_wav(tmp_path / "x" / "audio.wav", 1.0, seed=1)
    b = write_wav(tmp_path / "y" / "audio.wav", 1.0, seed=2)
    fa, fb = counting_encoder.audio2feat(str(a)), counting_encoder.audio2feat(str(b))
    assert counting_encoder.computations == 2
    assert len(cache_entries(counting_encoder)) == 2
    assert not torch.equal(fa, fb)


def test_cached_features_equal_computed(tiny_ckpt, counting_encoder, tmp_path):
    wav = write_wav(tmp_path / "clip.wav", 1.5, seed=3)
    uncached = Audio2Feature(tiny_ckpt, device="cpu").audio2feat(str(wav))
    counting_encoder.audio2feat(str(wav))
    from_cache = counting_encoder.audio2feat(str(wav))
    assert counting_encoder.computations == 1
    assert torch.equal(from_cache, uncached)


def test_truncated_entry_is_recomputed(counting_encoder, tmp_path):
    wav = write_wav(tmp_path / "clip.wav", 1.0, seed=4)
    expected = counting_encoder.audio2feat(str(wav))
    (entry,) = counting_encoder.cache.directory.iterdir()
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2])
    again = counting_encoder.audio2feat(str(wav))
    assert counting_encoder.computations == 2
    assert torch.equal(again, expected)
    assert entry.read_bytes() == data  # the entry was rewritten whole


def test_garbage_and_wrong_shape_entries_are_recomputed(counting_encoder, tmp_path):
    from safetensors.torch import save_file

    wav = write_wav(tmp_path / "clip.wav", 1.0, seed=4)
    expected = counting_encoder.audio2feat(str(wav))
    (entry,) = counting_encoder.cache.directory.iterdir()
    entry.write_bytes(b"not a safetensors file")
    assert torch.equal(counting_encoder.audio2feat(str(wav)), expected)
    save_file({"features": torch.zeros(5, 7, 9)}, entry)
    assert torch.equal(counting_encoder.audio2feat(str(wav)), expected)
    assert counting_encoder.computations == 3


def test_no_temp_files_left(counting_encoder, tmp_path):
    counting_encoder.audio2feat(str(write_wav(tmp_path / "clip.wav", 1.0, seed=6)))
    assert all(name.endswith(".safetensors") and not name.startswith(".") for name in cache_entries(counting_encoder))


def test_key_depends_on_options_and_model(tiny_ckpt, tmp_path):
    wav = str(write_wav(tmp_path / "clip.wav", 1.0, seed=7))
    other_ckpt = make_random_whisper_checkpoint(tmp_path / "other.pt", seed=6)
    cache = tmp_path / "cache"
    keys = {
        Audio2Feature(tiny_ckpt, device="cpu", audio_embeds_cache_dir=cache)._cache_key(wav),
        Audio2Feature(tiny_ckpt, device="cpu", audio_embeds_cache_dir=cache, fix_window_boundaries=True)._cache_key(wav),
        Audio2Feature(tiny_ckpt, device="cpu", audio_embeds_cache_dir=cache, dtype=torch.float64)._cache_key(wav),
        Audio2Feature(other_ckpt, device="cpu", audio_embeds_cache_dir=cache)._cache_key(wav),
    }
    assert len(keys) == 4


def test_array_input_is_cached_by_samples(counting_encoder):
    x = synthetic_audio(1.0, seed=8)
    counting_encoder.audio2feat(x)
    counting_encoder.audio2feat(x.copy())
    counting_encoder.audio2feat(np.ascontiguousarray(x[::-1]))
    assert counting_encoder.computations == 2
