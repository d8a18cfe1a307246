"""Write tiny random checkpoints that run every training and inference path on a CPU in seconds.

    python -m tools.make_tiny_checkpoints --out checkpoints/tiny
    python -m tools.make_tiny_checkpoints --out checkpoints/tiny --vae_data data/synthetic/train --vae_steps 600

<out>/vae/            diffusers AutoencoderKL folder, configs/vae/tiny.json        (training: ckpt.vae_path)
<out>/whisper_tiny.pt  openai-format Whisper, configs/whisper/tiny_dims.json      (ckpt.whisper_path)
<out>/unet_tiny.pt     {"state_dict", "global_step"}, configs/unet/tiny.yaml       (ckpt.resume_ckpt_path)
<out>/syncnet_tiny.pt  {"state_dict", "global_step"}, configs/syncnet/tiny.yaml    (ckpt.syncnet_ckpt_path)
Inference: `--unet_config_path configs/unet/tiny.yaml --inference_ckpt_path <out>/unet_tiny.pt
--vae_path <out>/vae --whisper_path <out>/whisper_tiny.pt`.

The U-Net is re-randomised like the reference goldens (norm weights 1 + 0.1·N, matrices N/sqrt(fan_in),
biases 0.05·N), including the layers the official init zeroes (conv_in, conv_out, motion-module proj_out),
so every layer affects the output and receives gradients, as in a trained model.

A random VAE does not reconstruct images. `--vae_data DIR` fits the tiny VAE to the frames of the clips in
DIR (MSE + a small KL term) so that decoded frames look like the data, which the learning demo needs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from latentsync.config import CONFIG_DIR, load_config
from latentsync.whisper.tiny import randomize_like_goldens_ as randomize_  # one scheme for all tiny models

logger = logging.getLogger("make_tiny_checkpoints")

TINY_VAE_CONFIG = CONFIG_DIR / "vae" / "tiny.json"
TINY_UNET_CONFIG = CONFIG_DIR / "unet" / "tiny.yaml"
TINY_SYNCNET_CONFIG = CONFIG_DIR / "syncnet" / "tiny.yaml"
TINY_WHISPER_DIMS = CONFIG_DIR / "whisper" / "tiny_dims.json"


def make_vae(out: Path, seed: int) -> Path:
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    config = json.loads(TINY_VAE_CONFIG.read_text())
    vae = AutoencoderKL.from_config({k: v for k, v in config.items() if not k.startswith("_")})
    vae.save_pretrained(out / "vae")
    return out / "vae"


def make_whisper(out: Path, seed: int) -> Path:
    from latentsync.whisper.tiny import make_random_whisper_checkpoint

    return make_random_whisper_checkpoint(out / "whisper_tiny.pt", dims=TINY_WHISPER_DIMS, seed=seed)


def make_unet(out: Path, seed: int, config_path: Path = TINY_UNET_CONFIG) -> Path:
    from latentsync.models.unet import UNet3DConditionModel

    unet = UNet3DConditionModel.from_config(OmegaConf.to_container(load_config(config_path).model, resolve=True))
    randomize_(unet, torch.Generator().manual_seed(seed))
    path = out / "unet_tiny.pt"
    torch.save({"state_dict": unet.state_dict(), "global_step": 0}, path)
    return path


def make_syncnet(out: Path, seed: int, config_path: Path = TINY_SYNCNET_CONFIG) -> Path:
    from latentsync.models.stable_syncnet import StableSyncNet

    torch.manual_seed(seed)
    syncnet = StableSyncNet(OmegaConf.to_container(load_config(config_path).model, resolve=True))
    path = out / "syncnet_tiny.pt"
    torch.save({"state_dict": syncnet.state_dict(), "global_step": 0}, path)
    return path


def make_tiny_checkpoints(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write all four tiny checkpoints; returns their paths by name (vae, whisper, unet, syncnet)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {"vae": make_vae(out, seed), "whisper": make_whisper(out, seed), "unet": make_unet(out, seed),
            "syncnet": make_syncnet(out, seed)}


def fit_vae(vae_dir: Path, data_dir: Path, steps: int, batch_size: int = 32, lr: float = 1e-3,
            kl_weight: float = 1e-6, seed: int = 0) -> list[float]:
    """Train the tiny VAE to reconstruct frames of the clips under `data_dir`; saves it back. Returns losses."""
    import numpy as np
    from diffusers import AutoencoderKL

    from latentsync.data.clips import ClipReader, gather_video_paths

    paths = gather_video_paths(data_dir)
    frames = np.concatenate([ClipReader(p, 25).frames(0, 10_000) for p in paths])
    pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    vae = AutoencoderKL.from_pretrained(vae_dir).train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        batch = pixels[torch.randint(len(pixels), (batch_size,), generator=generator)]
        posterior = vae.encode(batch).latent_dist
        recon = vae.decode(posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)).sample
        loss = torch.nn.functional.mse_loss(recon, batch) + kl_weight * posterior.kl().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 100 == 0 or step == steps - 1:
            logger.info("vae step %d/%d: loss %.5f", step + 1, steps, loss.item())
    vae.eval().save_pretrained(vae_dir)
    return losses


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vae_data", help="fit the tiny VAE to the frames of the clips in this folder")
    parser.add_argument("--vae_steps", type=int, default=600, help="VAE fitting steps (with --vae_data)")
    args = parser.parse_args(argv)
    paths = make_tiny_checkpoints(args.out, args.seed)
    if args.vae_data:
        fit_vae(paths["vae"], Path(args.vae_data), args.vae_steps, seed=args.seed)
    for name, path in paths.items():
        logger.info("%-8s %s", name, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
