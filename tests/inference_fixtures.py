"""Shared fixtures for the inference, CLI and app tests: tiny random models and self-made face clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentsync.utils.media import VideoReader, read_audio
from tools.make_demo_clip import make_demo_clip, read_index_marker

TINY_CONFIG = "configs/unet/tiny.yaml"


def tiny_options(ckpts: dict, **overrides) -> dict:
    """CLI/API options that run the tiny models fast on the CPU."""
    options = dict(unet_config_path=TINY_CONFIG, inference_ckpt_path=str(ckpts["unet"]), vae_path=str(ckpts["vae"]),
                   whisper_path=str(ckpts["whisper"]), inference_steps=2, device="cpu", progress=False)
    options.update(overrides)
    return options


def cli_args(ckpts: dict, video, audio, out, *extra: str) -> list[str]:
    return ["--unet_config_path", TINY_CONFIG, "--inference_ckpt_path", str(ckpts["unet"]),
            "--vae_path", str(ckpts["vae"]), "--whisper_path", str(ckpts["whisper"]), "--inference_steps", "2",
            "--device", "cpu", "--no_progress", "--video_path", str(video), "--audio_path", str(audio),
            "--video_out_path", str(out), *extra]


def face_clip(folder: Path, name: str, seconds: float, fps: float = 25, audio_seconds: float | None = None,
              blank_frames: tuple[int, ...] = (), width: int = 240, height: int = 320) -> tuple[Path, Path]:
    """A talking-face clip with a frame-index marker, plus a separate speech WAV."""
    return make_demo_clip(folder, seconds=seconds, fps=fps, width=width, height=height, blank_frames=blank_frames,
                          video_name=f"{name}.mp4", audio_name=f"{name}.wav", index_marker=True,
                          audio_seconds=audio_seconds)


def decode_all(path) -> np.ndarray:
    reader = VideoReader(path)
    return np.concatenate(list(reader.iter_chunks(32)))


def source_indices(frames: np.ndarray) -> list[int]:
    return [read_index_marker(f) for f in frames]


def audio_seconds(path) -> float:
    return len(read_audio(path)) / 16000
