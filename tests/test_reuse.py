"""Prepare once, lip-sync many: what depends only on the video is computed once and reused, with the same output.

Within a run, a source frame shown again (ping-pong and loop under a longer audio, duplicated frames after a
frame-rate change) is not encoded again: its VAE moments are kept (latentsync/pipelines/moments.py), and only the
posterior sample is drawn per output frame, so the latents are exactly those of encoding every time.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import latentsync.pipelines.lipsync_pipeline as pipeline_module
from latentsync.api import LipsyncOptions, build_pipeline
from latentsync.pipelines.moments import FrameMoments
from tests.inference_fixtures import decode_all, face_clip, tiny_options


@pytest.fixture(scope="module")
def loaded(ckpts):
    return build_pipeline(LipsyncOptions(**tiny_options(ckpts)))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reuse_clips")
    return {"short": face_clip(folder, "short", 0.6, audio_seconds=1.5),  # 15 source frames, 38 output frames
            "slow": face_clip(folder, "slow", 1.0, fps=12.5)}  # every source frame shown twice at 25 fps


def mask_store_folders(monkeypatch) -> list:
    """The folder of every occluder mask store made from now on (`MaskStore(folder)`), in order."""
    from latentsync.faces.stored_masks import MaskStore

    folders, real_init = [], MaskStore.__init__

    def recording_init(store, folder=None):
        folders.append(folder)
        real_init(store, folder)

    monkeypatch.setattr(MaskStore, "__init__", recording_init)
    return folders


def traced_run(loaded, clip, out, monkeypatch, **changes):
    """Run with `changes` to the sampling options; returns (denoised latents per chunk, frames encoded, result)."""
    latents, encoded = [], []
    real_decode, real_encode = pipeline_module.decode_latents, loaded.pipeline.vae.encode

    def decode(vae, chunk_latents, **kwargs):
        latents.append(chunk_latents.detach().clone())
        return real_decode(vae, chunk_latents, **kwargs)

    def encode(x, *args, **kwargs):
        encoded.append(len(x))
        return real_encode(x, *args, **kwargs)

    monkeypatch.setattr(pipeline_module, "decode_latents", decode)
    monkeypatch.setattr(loaded.pipeline.vae, "encode", encode)
    options = LipsyncOptions(progress=False, seed=3, inference_steps=2, length_mode=changes.pop("length_mode",
                                                                                                 "pingpong"))
    sampling = options.sampling_options(loaded.clip)
    from dataclasses import replace

    video, audio = clip
    result = loaded.pipeline.run(str(video), str(audio), str(out), replace(sampling, **changes),
                                 generator=torch.Generator().manual_seed(3), progress=False)
    monkeypatch.undo()
    return latents, sum(encoded), result


@pytest.mark.parametrize(("clip", "length_mode"), [("short", "pingpong"), ("short", "loop"), ("slow", "pingpong")])
def test_frames_shown_again_are_encoded_once_with_the_same_output(loaded, clips, tmp_path, monkeypatch, clip,
                                                                   length_mode):
    every, every_encoded, result = traced_run(loaded, clips[clip], tmp_path / "every.mp4", monkeypatch,
                                              length_mode=length_mode, reuse_moments=False)
    once, once_encoded, reused = traced_run(loaded, clips[clip], tmp_path / "once.mp4", monkeypatch,
                                            length_mode=length_mode)
    assert len(every) == len(once) and all(torch.equal(a, b) for a, b in zip(every, once, strict=True))
    assert np.array_equal(decode_all(tmp_path / "every.mp4"), decode_all(tmp_path / "once.mp4"))
    distinct = len(set(source_schedule(loaded, clips[clip], length_mode)))
    assert every_encoded == 2 * result.frames_with_face  # masked + reference image of every output frame
    assert once_encoded == 2 * reused.frames_encoded < every_encoded  # each distinct crop once
    assert reused.frames_encoded <= distinct  # at most every distinct source frame (fewer: equal duplicates)
    if clip == "short":
        assert reused.frames_encoded == distinct == 15


def source_schedule(loaded, clip, length_mode):
    from latentsync.pipelines.frame_schedule import num_output_frames, source_frame_indices
    from latentsync.utils.media import VideoReader, read_audio

    with VideoReader(str(clip[0]), target_fps=25) as reader:
        n_video = len(reader)
    n_out = num_output_frames(len(read_audio(str(clip[1]))) / 16000, n_video, 25, length_mode)
    return source_frame_indices(n_out, n_video, length_mode).tolist()


def test_moments_beyond_the_memory_budget_go_to_a_temp_folder_and_come_back(tmp_path):
    store = FrameMoments(memory_bytes=2 * 64, spill_parent=tmp_path)  # room for two (2, 2, 2, 2) fp32 tensors
    values = {i: torch.randn(2, 2, 2, 2) for i in range(5)}
    for index, value in values.items():
        store.put(index, value)
    assert store.bytes_in_memory == 2 * 64 and len(list(tmp_path.iterdir())) == 1  # the rest spilled
    assert all(torch.equal(store.get(i), values[i]) for i in values)
    store.release(4)
    assert 4 not in store and 3 in store
    store.close()
    assert list(tmp_path.iterdir()) == []  # nothing left next to the output


def test_a_second_run_on_the_same_video_reuses_the_face_pass_and_the_moments(loaded, ckpts, clips, tmp_path,
                                                                              monkeypatch):
    import latentsync
    from latentsync.faces import face_pass

    folders = mask_store_folders(monkeypatch)  # the output's folder: nothing is written outside it
    video, audio = clips["short"]
    options = tiny_options(ckpts, cache=True, cache_dir=str(tmp_path / "cache"), seed=3)
    first = latentsync.lipsync(str(video), str(audio), str(tmp_path / "first.mp4"), pipeline=loaded, **options)
    assert not first.prepared_from_cache and first.frames_encoded == 15  # every source frame once
    assert folders == [str(tmp_path)]
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 2  # the prepared entry and one moments shard

    def no_face_pass(*args, **kwargs):
        raise AssertionError("the face pass ran again")

    monkeypatch.setattr(face_pass.VideoFaceProcessor, "process", no_face_pass)
    second = latentsync.lipsync(str(video), str(audio), str(tmp_path / "second.mp4"), pipeline=loaded, **options,
                                debug_video=str(tmp_path / "second_debug.mp4"))
    assert second.prepared_from_cache and second.frames_encoded == 0
    assert (tmp_path / "second_debug.mp4").is_file()  # the overlay draws from the replayed track
    assert "face pass from the reuse cache, 0 source frames VAE-encoded" in second.summary()
    assert folders == [str(tmp_path)] * 2  # the second run's store is read from the cache
    assert np.array_equal(decode_all(tmp_path / "first.mp4"), decode_all(tmp_path / "second.mp4"))
    monkeypatch.undo()
    fresh = latentsync.lipsync(str(video), str(audio), str(tmp_path / "fresh.mp4"), pipeline=loaded,
                               **{**options, "cache": False})
    assert not fresh.prepared_from_cache and fresh.frames_encoded == 15
    assert np.array_equal(decode_all(tmp_path / "first.mp4"), decode_all(tmp_path / "fresh.mp4"))


def test_the_cache_key_changes_with_every_setting_that_changes_the_result(loaded, clips, tmp_path):
    from dataclasses import replace

    from latentsync.pipelines.prepared_video import prepared_key

    pipeline, video = loaded.pipeline, str(clips["short"][0])
    base = dict(fps=25, resolution=64, faces_config=pipeline.faces_config, backend="mediapipe",
                choice=[None, None, None], occlusion=None, vae=pipeline.vae, encode_frames_per_call=1)
    key = prepared_key(video, **base)
    assert prepared_key(video, **base) == key
    changed = [dict(fps=30), dict(resolution=128), dict(backend="insightface"), dict(choice=["speaker", None, None]),
               dict(occlusion="off"), dict(encode_frames_per_call=4),
               dict(faces_config=replace(pipeline.faces_config, blend=replace(pipeline.faces_config.blend,
                                                                              fade_frames=9)))]
    keys = {prepared_key(video, **{**base, **change}) for change in changed}
    assert key not in keys and len(keys) == len(changed)
    assert prepared_key(str(clips["slow"][0]), **base) != key  # other video bytes


def test_latentsync_prepare_fills_the_cache_ahead_of_any_audio(ckpts, clips, tmp_path, capsys, monkeypatch):
    from scripts import inference as cli
    from tests.inference_fixtures import TINY_CONFIG

    folders = mask_store_folders(monkeypatch)  # prepare has no output file: it spills into the cache's own folder

    video, audio = clips["slow"]
    model = ["--unet_config_path", TINY_CONFIG, "--inference_ckpt_path", str(ckpts["unet"]), "--vae_path",
             str(ckpts["vae"]), "--whisper_path", str(ckpts["whisper"]), "--inference_steps", "2", "--device", "cpu",
             "--no_progress", "--cache_dir", str(tmp_path / "cache")]
    assert cli.main(["prepare", str(video), *model]) == 0
    assert "is prepared (" in capsys.readouterr().out
    assert folders == [str(tmp_path / "cache" / "prepared")]
    assert cli.main(["prepare", str(video), *model]) == 0
    assert "was prepared already (0 frames encoded now)" in capsys.readouterr().out
    out = tmp_path / "out.mp4"
    assert cli.main(["--video_path", str(video), "--audio_path", str(audio), "--video_out_path", str(out), *model]) == 0
    assert "face pass from the reuse cache, 0 source frames VAE-encoded" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:  # a usage error: exit 2, one line
        cli.main(["prepare", str(video), *model, "--no_cache"])
    assert stop.value.code == 2 and "cannot be combined with --no_cache" in capsys.readouterr().err


def test_a_run_showing_more_frames_redoes_the_face_pass_but_reuses_the_moments(loaded, ckpts, clips, tmp_path):
    import latentsync

    video, audio = clips["short"]
    brief = face_clip(tmp_path, "brief", 0.32)[1]  # 8 frames of audio
    options = tiny_options(ckpts, cache=True, cache_dir=str(tmp_path / "cache"), seed=3)
    first = latentsync.lipsync(str(video), str(brief), str(tmp_path / "first.mp4"), pipeline=loaded, **options)
    assert first.num_frames == 8 and first.frames_encoded == 8
    longer = latentsync.lipsync(str(video), str(audio), str(tmp_path / "longer.mp4"), pipeline=loaded, **options)
    assert not longer.prepared_from_cache  # the prepared face pass covers 8 of the 15 frames shown
    assert 0 < longer.frames_encoded < 15  # the crops seen before keep their moments
    again = latentsync.lipsync(str(video), str(audio), str(tmp_path / "again.mp4"), pipeline=loaded, **options)
    assert again.prepared_from_cache and again.frames_encoded == 0  # the longer face pass was kept


def test_the_cache_holds_no_whole_video_in_memory_and_a_lost_shard_is_encoded_again(loaded, ckpts, tmp_path,
                                                                                   monkeypatch):
    """Moments go to the cache in shards as they are computed and come back one shard at a time, so a run holds at
    most the crops it still shows (one chunk here) and the recorder one shard; a shard evicted since is a miss whose
    frames are encoded again, with the same output."""
    import latentsync
    from latentsync.pipelines.moments import FrameMoments as Store

    video, audio = face_clip(tmp_path, "forward", 2.0)  # 50 frames, each shown once
    frame_bytes = 2 * 2 * 4 * 8 * 8 * 4  # (2, 2, 4, h, w) fp32 moments of a 64 px crop
    monkeypatch.setattr(loaded.pipeline, "cache_shard_bytes", 12 * frame_bytes)
    peak = {"held": 0}
    real_put = Store.put

    def counting_put(self, key, moments, fresh=True):
        real_put(self, key, moments, fresh)
        pending = self.recorder._pending_bytes if self.recorder is not None else 0
        peak["held"] = max(peak["held"], self.bytes_in_memory + pending)

    monkeypatch.setattr(Store, "put", counting_put)
    options = tiny_options(ckpts, cache=True, cache_dir=str(tmp_path / "cache"), seed=3)
    first = latentsync.lipsync(str(video), str(audio), str(tmp_path / "first.mp4"), pipeline=loaded, **options)
    assert first.frames_encoded == 50
    assert peak["held"] <= (16 + 12) * frame_bytes  # one chunk's crops + one pending shard, not 50 frames
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 1 + 5  # the index and 50 / 12 -> 5 shards
    index = shard_index(tmp_path / "cache")
    crops_per_shard = Counter(index.values())
    assert sorted(crops_per_shard.values()) == [2, 12, 12, 12, 12]
    smallest = min(crops_per_shard, key=crops_per_shard.get)
    next((tmp_path / "cache").rglob(f"{smallest}.safetensors")).unlink()  # evicted by another run, say
    second = latentsync.lipsync(str(video), str(audio), str(tmp_path / "second.mp4"), pipeline=loaded, **options)
    assert second.prepared_from_cache and second.frames_encoded == 2
    assert np.array_equal(decode_all(tmp_path / "first.mp4"), decode_all(tmp_path / "second.mp4"))


def shard_index(cache_dir) -> dict[str, str]:
    """Crop key -> shard key of the one prepared video in `cache_dir`."""
    from latentsync.pipelines.prepared_video import load_prepared
    from latentsync.utils.content_cache import EntryCache

    cache = EntryCache(next(Path(cache_dir).rglob("*.safetensors")).parent)
    prepared = [load_prepared(cache, path.stem) for path in cache.directory.glob("*.safetensors")]
    (found,) = [p for p in prepared if p is not None]
    return found.moments.index
