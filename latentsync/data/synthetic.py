"""Synthetic training clips whose mouth really follows the audio: the project's own data for CPU tests and demos.

Each clip is an H.264 + AAC mp4 (25 fps, 16 kHz audio) of an aligned face with a `<name>.json` sidecar that
records how it was made (seed, audio/video offset, the per-frame mouth opening). A dataset is a folder with
`train/` and `val/` (held out: different syllables, head motion and appearance) and a `manifest.json`.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from latentsync.config import CONFIG_DIR, load_config
from latentsync.data.synthetic_face import FaceRenderer
from latentsync.data.synthetic_speech import shift_frames, synthesize

SYNTHETIC_CONFIG = CONFIG_DIR / "training" / "synthetic_data.yaml"
SPLIT_SEED_STRIDE = 1_000_003  # keeps train and val seeds disjoint


def synthetic_config(overrides=()):
    """The `synthetic:` section of configs/training/synthetic_data.yaml with `key=value` overrides applied."""
    return load_config(SYNTHETIC_CONFIG, [f"synthetic.{o}" for o in overrides]).synthetic


@dataclass(frozen=True)
class ClipSpec:
    """What to make: the clip's seed fixes audio, head motion and appearance; the offset delays the mouth."""

    path: Path
    seed: int
    av_offset_frames: int = 0


def render_clip(spec: ClipSpec, cfg) -> tuple[np.ndarray, np.ndarray, dict]:
    """Frames (n, R, R, 3) uint8, audio samples (float32) and the sidecar metadata, without writing files."""
    rng = np.random.default_rng(spec.seed)
    speech = synthesize(cfg.clip_seconds, cfg.fps, cfg.sample_rate, rng, cfg.speech)
    opening = shift_frames(speech.opening, spec.av_offset_frames)
    width = shift_frames(speech.width, spec.av_offset_frames)
    renderer = FaceRenderer(cfg.resolution, cfg, rng, fps=cfg.fps)
    frames = renderer.render(opening, width)
    mouth_x, mouth_y, mouth_w = renderer.mouth_box(0)
    meta = {
        "seed": spec.seed,
        "av_offset_frames": spec.av_offset_frames,
        "fps": cfg.fps,
        "sample_rate": cfg.sample_rate,
        "resolution": cfg.resolution,
        "num_frames": len(frames),
        "mouth_opening": [round(float(v), 4) for v in opening],
        "audio_mouth_opening": [round(float(v), 4) for v in speech.opening],
        "mouth_center_frame0": [round(mouth_x, 2), round(mouth_y, 2)],
        "mouth_width_frame0": round(mouth_w, 2),
        "vowels": "".join(s.vowel for s in speech.syllables),
    }
    return frames, speech.samples, meta


def write_clip(spec: ClipSpec, cfg) -> dict:
    """Render one clip and write `<path>` (mp4) and `<path>.json`; returns the metadata."""
    from latentsync.utils.media import VideoWriter, write_wav

    frames, samples, meta = render_clip(spec, cfg)
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "audio.wav"
        write_wav(wav, samples, cfg.sample_rate)
        with VideoWriter(spec.path, cfg.fps, audio_path=wav) as writer:
            writer.write(frames)
    spec.path.with_suffix(".json").write_text(json.dumps(meta))
    return meta


def plan_dataset(out_dir: Path, cfg, offsets=(0,)) -> list[ClipSpec]:
    """Clip specs for `train/` and `val/`; offsets are assigned round-robin (all 0 = everything in sync)."""
    specs = []
    for split, count, split_index in (("train", cfg.num_train, 0), ("val", cfg.num_val, 1)):
        for i in range(count):
            seed = int(cfg.seed) * 7919 + split_index * SPLIT_SEED_STRIDE + i
            offset = int(offsets[i % len(offsets)])
            specs.append(ClipSpec(out_dir / split / f"{split}_{i:05d}.mp4", seed, offset))
    return specs


def make_dataset(out_dir: str | Path, cfg, offsets=(0,), progress=None) -> Path:
    """Write every clip of the dataset plus `manifest.json` (config and clip list); returns the manifest path."""
    out_dir = Path(out_dir)
    specs = plan_dataset(out_dir, cfg, offsets)
    items = specs if progress is None else progress(specs)
    for spec in items:
        write_clip(spec, cfg)
    manifest = {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "offsets": [int(o) for o in offsets],
        "clips": [{"path": str(s.path.relative_to(out_dir)), "seed": s.seed, "av_offset_frames": s.av_offset_frames}
                  for s in specs],
    }
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1))
    return path
