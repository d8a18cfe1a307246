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
                   whisper_path=str(ckpts["whisper"]), inference_steps=2, device="cpu", progress=False, cache=False)
    options.update(overrides)
    return options


def cli_args(ckpts: dict, video, audio, out, *extra: str) -> list[str]:
    return ["--unet_config_path", TINY_CONFIG, "--inference_ckpt_path", str(ckpts["unet"]),
            "--vae_path", str(ckpts["vae"]), "--whisper_path", str(ckpts["whisper"]), "--inference_steps", "2",
            "--device", "cpu", "--no_progress", "--no_cache", "--video_path", str(video), "--audio_path", str(audio),
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


TWO_FACE_SIZE, TWO_FACE_FRAME = 160, (240, 400)  # each face's square, the frame (h, w)


def two_face_clip(folder: Path, name: str, speaking: int, seconds: float = 4.0, with_audio: bool = True,
                  ) -> tuple[Path, Path, list[tuple[int, int, int, int]]]:
    """Two generated faces side by side; each mouth follows its own generated speech, and the video's audio track
    (also returned as a WAV) is the speech of face `speaking` (0 = left): only that mouth follows the audio, the
    other moves out of sync with it. Returns (video, wav, [(x1, y1, x2, y2) of each face's square])."""
    from latentsync.data.synthetic import synthetic_config
    from latentsync.data.synthetic_face import FaceRenderer
    from latentsync.data.synthetic_speech import synthesize
    from latentsync.utils.media import VideoWriter, write_wav

    cfg = synthetic_config([f"resolution={TWO_FACE_SIZE}", f"clip_seconds={seconds}"])
    faces, speech = [], []
    for seed in (1, 2):  # fixed seeds: the same two people and speeches in every run
        rng = np.random.default_rng(seed)
        track = synthesize(cfg.clip_seconds, cfg.fps, cfg.sample_rate, rng, cfg.speech)
        faces.append(FaceRenderer(cfg.resolution, cfg, rng, fps=cfg.fps).render(track.opening, track.width))
        speech.append(track.samples)
    height, width = TWO_FACE_FRAME
    top, gap = (height - TWO_FACE_SIZE) // 2, (width - 2 * TWO_FACE_SIZE) // 3
    boxes = [(gap + k * (TWO_FACE_SIZE + gap), top, gap + k * (TWO_FACE_SIZE + gap) + TWO_FACE_SIZE,
              top + TWO_FACE_SIZE) for k in range(2)]
    frames = np.full((len(faces[0]), height, width, 3), 100, np.uint8)
    for (x1, y1, x2, y2), face in zip(boxes, faces, strict=True):
        frames[:, y1:y2, x1:x2] = face
    folder.mkdir(parents=True, exist_ok=True)
    wav = folder / f"{name}.wav"
    write_wav(wav, speech[speaking], cfg.sample_rate)
    video = folder / f"{name}.mp4"
    with VideoWriter(video, cfg.fps, audio_path=wav if with_audio else None) as writer:
        writer.write(frames)
    return video, wav, boxes


def with_audio(video, samples, sample_rate, folder: Path, name: str) -> Path:
    """The same frames with another audio track (also written as `name`.wav in `folder`)."""
    from latentsync.utils.media import VideoWriter, write_wav

    wav = folder / f"{name}.wav"
    write_wav(wav, samples, sample_rate)
    out = folder / f"{name}.mp4"
    with VideoWriter(out, 25, audio_path=wav) as writer:
        writer.write(decode_all(video))
    return out


def voice_over_clip(video, folder: Path, name: str = "voice_over") -> Path:
    """A 4 s clip's frames under a third person's generated voice that no visible face speaks (a voice-over);
    its audio is also `name`.wav in `folder`."""
    from latentsync.data.synthetic import synthetic_config
    from latentsync.data.synthetic_speech import synthesize

    cfg = synthetic_config(["clip_seconds=4.0"])
    voice = synthesize(4.0, 25, cfg.sample_rate, np.random.default_rng(3), cfg.speech).samples
    return with_audio(video, voice, cfg.sample_rate, folder, name)


def region_change(frames_in: np.ndarray, frames_out: np.ndarray, box) -> float:
    """Mean absolute difference (grey levels) between input and output inside a (x1, y1, x2, y2) box."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return float(np.abs(frames_out[:, y1:y2, x1:x2].astype(int) - frames_in[:, y1:y2, x1:x2].astype(int)).mean())
