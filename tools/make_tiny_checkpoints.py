"""Write tiny random checkpoints that run every stage on a CPU in seconds (tests and smoke runs).

    python -m tools.make_tiny_checkpoints --out DIR

Writes, from the tiny configs in configs/:
    DIR/vae/                 diffusers AutoencoderKL folder (configs/vae/tiny.json)
    DIR/whisper_tiny.pt      openai-whisper format {"dims", "model_state_dict"} (configs/whisper/tiny_dims.json)
    DIR/unet_tiny.pt         official U-Net checkpoint format {"state_dict", "global_step"} (configs/unet/tiny.yaml)
    DIR/syncnet_tiny.pt      official SyncNet checkpoint format (configs/syncnet/tiny.yaml)
Use them with the normal flags, e.g. `--unet_config_path configs/unet/tiny.yaml --inference_ckpt_path
DIR/unet_tiny.pt --vae_path DIR/vae --whisper_path DIR/whisper_tiny.pt`.

The U-Net's zero-initialised layers (conv_in/conv_out, motion-module proj_out) get small random values, so
that every layer affects the output, as in a trained model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from latentsync.config import CONFIG_DIR, load_config, model_config


def _randomize_zero_params(module: torch.nn.Module, generator: torch.Generator, scale: float = 0.02) -> None:
    with torch.no_grad():
        for param in module.parameters():
            if param.ndim > 1 and not param.any():
                param.copy_(torch.randn(param.shape, generator=generator) * scale)


def make_tiny_checkpoints(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Create the tiny checkpoints in `out_dir`; returns their paths by name (vae, whisper, unet, syncnet)."""
    from diffusers import AutoencoderKL

    from latentsync.models.stable_syncnet import StableSyncNet
    from latentsync.models.unet import UNet3DConditionModel
    from latentsync.whisper.tiny import make_random_whisper_checkpoint

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    paths = {"vae": out / "vae", "whisper": out / "whisper_tiny.pt", "unet": out / "unet_tiny.pt",
             "syncnet": out / "syncnet_tiny.pt"}

    torch.manual_seed(seed)
    vae_config = json.loads((CONFIG_DIR / "vae" / "tiny.json").read_text())
    vae_config.pop("_class_name", None)
    AutoencoderKL(**vae_config).save_pretrained(paths["vae"], safe_serialization=True)

    make_random_whisper_checkpoint(paths["whisper"], CONFIG_DIR / "whisper" / "tiny_dims.json", seed=seed)

    unet = UNet3DConditionModel.from_config(model_config(load_config("configs/unet/tiny.yaml")))
    _randomize_zero_params(unet, generator)
    torch.save({"state_dict": unet.state_dict(), "global_step": 0}, paths["unet"])

    syncnet = StableSyncNet(model_config(load_config("configs/syncnet/tiny.yaml")))
    torch.save({"state_dict": syncnet.state_dict(), "global_step": 0}, paths["syncnet"])
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name, path in make_tiny_checkpoints(args.out, args.seed).items():
        print(f"{name:8s} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
