"""Prepare once, lip-sync many: what depends only on the video is computed once and reused, with the same output.

Within a run, a source frame shown again (ping-pong and loop under a longer audio, duplicated frames after a
frame-rate change) is not encoded again: its VAE moments are kept (latentsync/pipelines/moments.py), and only the
posterior sample is drawn per output frame, so the latents are exactly those of encoding every time.
"""

from __future__ import annotations

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
    once, once_encoded, _ = traced_run(loaded, clips[clip], tmp_path / "once.mp4", monkeypatch,
                                       length_mode=length_mode)
    assert len(every) == len(once) and all(torch.equal(a, b) for a, b in zip(every, once, strict=True))
    assert np.array_equal(decode_all(tmp_path / "every.mp4"), decode_all(tmp_path / "once.mp4"))
    schedule_faced = result.frames_with_face
    distinct = len(set(source_schedule(loaded, clips[clip], length_mode)))
    assert every_encoded == 2 * schedule_faced  # masked + reference image of every output frame
    assert once_encoded == 2 * distinct < every_encoded  # of every distinct source frame, once


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
