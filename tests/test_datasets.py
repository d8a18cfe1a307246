"""Training data: synthetic clips really move the mouth with the audio; SyncNet / U-Net samples have the official
shapes, ranges and windows; bad clips are skipped with a reason; the mel cache is keyed by content."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch

from latentsync.config import audio_settings
from latentsync.data.clips import read_fileslist
from latentsync.data.mel_cache import MelCache
from latentsync.data.syncnet_dataset import SyncNetDataset, syncnet_visual_input
from latentsync.data.synthetic import ClipSpec, render_clip, synthetic_config, write_clip
from latentsync.data.unet_dataset import UNetDataset
from latentsync.errors import InputError
from latentsync.training.data_order import EpochShardSampler
from latentsync.training.settings import SyncNetTrainingSettings, UNetTrainingSettings
from latentsync.utils.audio import melspectrogram
from latentsync.utils.media import VideoReader, read_audio
from tests.training_fixtures import make_clips

NUM_FRAMES = 16


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    make_clips(folder, 3)
    return folder


@pytest.fixture(scope="module")
def whisper_ckpt(ckpts):
    return ckpts["whisper"]


def syncnet_config(tmp_path, *extra):
    return SyncNetTrainingSettings.load("configs/syncnet/tiny.yaml",
                                        [f"data.audio_mel_cache_dir={tmp_path / 'mel'}", *extra])


def unet_config(tmp_path, whisper_ckpt, *extra):
    return UNetTrainingSettings.load("configs/unet/tiny.yaml", [
        f"data.audio_mel_cache_dir={tmp_path / 'mel'}", f"data.audio_embeds_cache_dir={tmp_path / 'embeds'}",
        f"ckpt.whisper_path={whisper_ckpt}", *extra])


def corr(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, float), np.asarray(b, float))[0, 1])


# ---------------------------------------------------------------------------------------------- synthetic data


def mouth_change(frames: np.ndarray, meta: dict) -> np.ndarray:
    """Mean absolute pixel change around the mouth relative to the most closed frame: grows with the opening."""
    x, y = meta["mouth_center_frame0"]
    w = meta["mouth_width_frame0"]
    box = frames[:, int(y - 0.45 * w): int(y + 0.45 * w) + 1, int(x - 0.45 * w): int(x + 0.45 * w) + 1]
    box = box.astype(np.float64)
    closed = box[int(np.argmin(meta["mouth_opening"]))]
    return np.abs(box - closed).mean(axis=(1, 2, 3))


def frame_loudness(samples: np.ndarray, num_frames: int, sample_rate=16000, fps=25) -> np.ndarray:
    hop = sample_rate // fps
    return np.array([np.sqrt(np.mean(samples[i * hop:(i + 1) * hop] ** 2)) for i in range(num_frames)])


def test_synthetic_mouth_follows_audio():
    cfg = synthetic_config(["clip_seconds=4"])
    pixels_vs_opening, sound_vs_pixels = [], []
    for seed in range(1, 5):
        frames, samples, meta = render_clip(ClipSpec(path=None, seed=seed), cfg)
        assert frames.shape == (100, 64, 64, 3) and frames.dtype == np.uint8
        assert len(samples) == 64000 and np.abs(samples).max() <= 1
        opening = np.array(meta["mouth_opening"])
        assert opening.max() > 0.5 and (opening < 0.05).any()  # the mouth both opens wide and closes
        change = mouth_change(frames, meta)
        pixels_vs_opening.append(corr(change, opening))
        sound_vs_pixels.append(corr(frame_loudness(samples, len(frames)), change))
    # observed: 0.93 and 0.80 on average (head sway and the nonlinear look of lips/teeth keep them below 1)
    assert np.mean(pixels_vs_opening) > 0.85
    assert np.mean(sound_vs_pixels) > 0.65


def test_synthetic_offset_delays_the_mouth():
    cfg = synthetic_config(["clip_seconds=4"])
    frames, samples, meta = render_clip(ClipSpec(path=None, seed=5, av_offset_frames=3), cfg)
    loud = frame_loudness(samples, len(frames))
    change = mouth_change(frames, meta)
    lags = list(range(-6, 7))
    scores = [corr(loud[10:90], change[10 + lag:90 + lag]) for lag in lags]
    assert lags[int(np.argmax(scores))] == 3  # the mouth shows frame t's sound at frame t + 3


def test_synthetic_clip_file(tmp_path):
    cfg = synthetic_config(["clip_seconds=2"])
    meta = write_clip(ClipSpec(tmp_path / "a.mp4", seed=1), cfg)
    info = VideoReader(tmp_path / "a.mp4").info
    assert (info.fps, info.num_frames, info.width, info.height, info.has_audio) == (25, 50, 64, 64, True)
    assert abs(len(read_audio(tmp_path / "a.mp4")) - 32000) < 1600  # AAC may pad by a frame
    assert (tmp_path / "a.json").is_file() and meta["num_frames"] == 50


# ---------------------------------------------------------------------------------------------- SyncNet dataset


def test_syncnet_dataset_samples(clip_dir, tmp_path):
    ds = SyncNetDataset(str(clip_dir), "", syncnet_config(tmp_path))
    labels = set()
    for epoch in range(4):
        for index in range(len(ds)):
            s = ds.sample(index, epoch)
            labels.add(float(s["y"]))
            assert s["frames"].shape == (NUM_FRAMES, 3, 64, 64) and s["frames"].dtype == torch.float32
            assert s["frames"].min() >= -1 and s["frames"].max() <= 1
            assert s["audio_samples"].shape == (1, 80, 52)
            assert s["audio_samples"].min() >= -4 and s["audio_samples"].max() <= 4
            # the mel window is the official crop at int(80 * start / 25)
            mel = melspectrogram(read_audio(s["video_path"]), audio_settings())
            start = int(80.0 * (s["start_idx"] / 25.0))
            torch.testing.assert_close(s["audio_samples"][0], torch.from_numpy(mel[:, start:start + 52]).float())
            frames = VideoReader(s["video_path"]).get_frames(range(s["start_idx"], s["start_idx"] + NUM_FRAMES))
            same = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
            if s["y"] == 1:  # positives show the frames of the audio window, negatives another window
                torch.testing.assert_close(s["frames"], same, atol=1e-6, rtol=0)
            else:
                assert not torch.allclose(s["frames"], same)
    assert labels == {0.0, 1.0}


def test_syncnet_dataset_is_deterministic_per_epoch(clip_dir, tmp_path):
    ds = SyncNetDataset(str(clip_dir), "", syncnet_config(tmp_path))
    a, b = ds.sample(1, 0), ds.sample(1, 0)
    assert a["start_idx"] == b["start_idx"] and torch.equal(a["frames"], b["frames"])
    starts = {ds.sample(1, epoch)["start_idx"] for epoch in range(6)}
    assert len(starts) > 1  # a new epoch draws new windows


def test_syncnet_visual_input_takes_the_lower_half():
    frames = torch.randn(2, NUM_FRAMES, 3, 64, 64)
    out = syncnet_visual_input(frames, lower_half=True)
    assert out.shape == (2, 48, 32, 64)
    torch.testing.assert_close(out[:, 3:6], frames[:, 1, :, 32:])  # frame-major: frame 1 = channels 3..5
    assert syncnet_visual_input(frames, lower_half=False).shape == (2, 48, 64, 64)


# ---------------------------------------------------------------------------------------------- U-Net dataset


def test_unet_dataset_samples(clip_dir, tmp_path, whisper_ckpt):
    from latentsync.utils.image_processor import load_fixed_mask
    from latentsync.whisper.audio2feature import Audio2Feature

    ds = UNetDataset(str(clip_dir), unet_config(tmp_path, whisper_ckpt))
    mask = load_fixed_mask(64)[0:1].float()
    encoder = Audio2Feature(whisper_ckpt, device="cpu")
    for index in range(len(ds)):
        s = ds.sample(index, 0)
        for key in ("gt_pixel_values", "masked_pixel_values", "ref_pixel_values"):
            assert s[key].shape == (NUM_FRAMES, 3, 64, 64)
            assert s[key].min() >= -1 and s[key].max() <= 1
        assert s["masks"].shape == (NUM_FRAMES, 1, 64, 64)
        torch.testing.assert_close(s["masks"], mask.expand(NUM_FRAMES, -1, -1, -1))
        torch.testing.assert_close(s["masked_pixel_values"], s["gt_pixel_values"] * mask)
        assert abs(s["ref_start_idx"] - s["start_idx"]) >= NUM_FRAMES  # reference never overlaps the target
        assert not torch.allclose(s["ref_pixel_values"], s["gt_pixel_values"])
        assert s["mel"].shape == (1, 80, 52)
        # whisper tiny dims: 2 layers + input embedding = 3, x 10 time steps -> 30 tokens of 64
        assert s["audio_embeds"].shape == (NUM_FRAMES, 30, 64)
        expected = encoder.crop_overlap_audio_window(encoder.audio2feat(s["video_path"]), s["start_idx"])
        torch.testing.assert_close(s["audio_embeds"], expected.float())
    assert any((tmp_path / "embeds").iterdir())  # whisper features went through the content cache


def test_unet_dataset_without_sync_loss_has_no_mel(clip_dir, tmp_path, whisper_ckpt):
    ds = UNetDataset(str(clip_dir), unet_config(tmp_path, whisper_ckpt, "run.use_syncnet=false"))
    assert "mel" not in ds.sample(0, 0) and "audio_embeds" in ds.sample(0, 0)


# ---------------------------------------------------------------------------------------------- bad clips


def write_bad_clips(folder):
    folder.mkdir(parents=True, exist_ok=True)
    garbage = folder / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    short = make_clips(folder, 1, seed=50, seconds=1.0)[0]  # 25 frames: too short for two 16-frame windows
    return [folder / "missing.mp4", garbage, short]


def test_bad_clips_are_skipped_with_a_reason(clip_dir, tmp_path, caplog):
    bad = write_bad_clips(tmp_path / "bad")
    good = sorted(clip_dir.glob("*.mp4"))
    fileslist = tmp_path / "list.txt"
    fileslist.write_text("\n".join(str(p) for p in [bad[0], good[0], bad[1], good[1], bad[2], good[2]]) + "\n")
    ds = SyncNetDataset("", str(fileslist), syncnet_config(tmp_path))
    with caplog.at_level(logging.WARNING):
        used = {ds.sample(i, e)["video_path"] for e in range(3) for i in range(len(ds))}
    assert used <= {str(p) for p in good}
    assert set(ds.unusable) == {str(p) for p in bad}
    reasons = " ".join(ds.unusable.values())
    assert "file not found" in reasons and "cannot decode" in reasons and "only 25 frames" in reasons
    assert sum("skipping clip" in r.message for r in caplog.records) == 3  # each bad clip is reported once


def test_only_bad_clips_stop_with_an_error(tmp_path):
    bad = write_bad_clips(tmp_path / "bad")
    fileslist = tmp_path / "list.txt"
    fileslist.write_text("\n".join(map(str, bad)))
    ds = SyncNetDataset("", str(fileslist), syncnet_config(tmp_path, "data.max_sample_attempts=5"))
    with pytest.raises(InputError, match="no usable clip after 5 attempts"):
        ds[0]


def test_fileslist_comments_and_relative_entries(clip_dir, tmp_path):
    target = tmp_path / "lists"
    target.mkdir()
    shutil.copy(next(clip_dir.glob("*.mp4")), target / "x.mp4")
    (target / "list.txt").write_text("# my clips\n\nx.mp4\n")
    assert read_fileslist(target / "list.txt") == [str(target / "x.mp4")]


def test_empty_sources_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no training data given"):
        SyncNetDataset("", "", syncnet_config(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .mp4 clips found"):
        SyncNetDataset(str(tmp_path / "empty"), "", syncnet_config(tmp_path))


# ---------------------------------------------------------------------------------------------- mel cache


def test_mel_cache_is_keyed_by_content(clip_dir, tmp_path):
    a, b = sorted(clip_dir.glob("*.mp4"))[:2]
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    (tmp_path / "z").mkdir()
    shutil.copy(a, tmp_path / "x" / "clip.mp4")
    shutil.copy(b, tmp_path / "y" / "clip.mp4")  # same basename, different content
    shutil.copy(a, tmp_path / "z" / "renamed.mp4")  # same content, different name
    cache = MelCache(tmp_path / "cache", audio_settings())
    assert cache.key(tmp_path / "x" / "clip.mp4") != cache.key(tmp_path / "y" / "clip.mp4")
    assert cache.key(tmp_path / "x" / "clip.mp4") == cache.key(tmp_path / "z" / "renamed.mp4")


def test_corrupt_mel_cache_entry_is_recomputed(clip_dir, tmp_path):
    ds = SyncNetDataset(str(clip_dir), "", syncnet_config(tmp_path))
    path = ds.video_paths[0]
    first = ds.read_mel(path)
    entry = ds._mel_cache.path_for(path)
    entry.write_bytes(b"not a safetensors file")
    again = SyncNetDataset(str(clip_dir), "", syncnet_config(tmp_path)).read_mel(path)
    torch.testing.assert_close(first, again)
    assert entry.stat().st_size > 100


# ---------------------------------------------------------------------------------------------- sampler


def test_epoch_shard_sampler_splits_and_resumes():
    shards = [list(EpochShardSampler(10, 2, rank, seed=3)) for rank in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5 and not set(shards[0]) & set(shards[1])
    sampler = EpochShardSampler(10, 2, 0, seed=3)
    sampler.set_epoch(0, skip=2)
    assert list(sampler) == shards[0][2:] and len(sampler) == 3
    sampler.set_epoch(1)
    assert list(sampler) != shards[0]  # a new permutation each epoch
