"""Helpers shared by the dataset and training tests: a few synthetic clips and the tiny checkpoints."""

from __future__ import annotations

from pathlib import Path

from latentsync.data.synthetic import ClipSpec, synthetic_config, write_clip

CLIP_SECONDS = 2.4  # 60 frames: enough for a U-Net sample (3 x 16) and cheap to decode


def make_clips(folder: Path, count: int, seed: int = 0, seconds: float = CLIP_SECONDS, offset: int = 0,
               resolution: int = 64) -> list[Path]:
    """`count` synthetic 64 px clips (mp4 + json sidecar) in `folder`."""
    cfg = synthetic_config([f"clip_seconds={seconds}", f"resolution={resolution}"])
    paths = []
    for i in range(count):
        path = folder / f"clip_{seed + i:03d}.mp4"
        write_clip(ClipSpec(path, seed + i, offset), cfg)
        paths.append(path)
    return paths


def tiny_overrides(ckpts: dict, data_dir: Path, out_dir: Path, cache_dir: Path) -> list[str]:
    """Command-line style overrides that point a tiny config at test data, checkpoints and temp folders."""
    return [
        f"data.train_data_dir={data_dir}",
        f"data.train_output_dir={out_dir}",
        f"data.audio_mel_cache_dir={cache_dir / 'mel'}",
        f"data.audio_embeds_cache_dir={cache_dir / 'embeds'}",
        f"ckpt.vae_path={ckpts['vae']}",
        f"ckpt.whisper_path={ckpts['whisper']}",
        f"ckpt.syncnet_ckpt_path={ckpts['syncnet']}",
        "ckpt.lpips_require_pretrained=false",
        "data.num_workers=0",
    ]
