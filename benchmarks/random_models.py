"""Random-weight models of a given architecture for speed and memory figures (no checkpoint needed).

`real`: the stage-2 U-Net of the resolution (configs/unet/stage2.yaml, 1.27 B parameters, or stage2_512.yaml),
an sd-vae-ft-mse-sized VAE (configs/vae/sd-vae-ft-mse.json) and a Whisper-tiny-sized encoder
(configs/whisper/whisper_tiny_dims.json); `tiny`: the test models (configs/unet/tiny.yaml, configs/vae/tiny.json,
configs/whisper/tiny_dims.json). Weights are random: the numbers are architecture costs, not quality.
"""

from __future__ import annotations

import json
from pathlib import Path

from latentsync.config import CONFIG_DIR

ARCHITECTURES = {
    "real": {"unet": {256: "configs/unet/stage2.yaml", 512: "configs/unet/stage2_512.yaml"},
             "vae": CONFIG_DIR / "vae" / "sd-vae-ft-mse.json", "whisper": CONFIG_DIR / "whisper" / "whisper_tiny_dims.json"},
    "tiny": {"unet": {}, "vae": CONFIG_DIR / "vae" / "tiny.json", "whisper": CONFIG_DIR / "whisper" / "tiny_dims.json"},
}
TINY_UNET = "configs/unet/tiny.yaml"


def random_models(kind: str, resolution: int, folder: Path, device: str = "cpu", seed: int = 0):
    """(unet, vae, audio_encoder) with random weights, on `device`, fp32. `folder` holds the Whisper file."""
    import torch
    from diffusers import AutoencoderKL

    from latentsync.config import load_config, model_config
    from latentsync.models.unet import UNet3DConditionModel
    from latentsync.whisper.audio2feature import Audio2Feature
    from latentsync.whisper.tiny import make_random_whisper_checkpoint

    arch = ARCHITECTURES[kind]
    torch.manual_seed(seed)
    if kind == "real" and resolution not in arch["unet"]:
        raise ValueError(f"real-size models exist for {sorted(arch['unet'])} px, not {resolution}")
    unet_config = arch["unet"].get(resolution, TINY_UNET)  # tiny: one U-Net for any size
    unet = UNet3DConditionModel.from_config(model_config(load_config(unet_config))).eval()
    vae_config = json.loads(Path(arch["vae"]).read_text())
    vae = AutoencoderKL.from_config({k: v for k, v in vae_config.items() if not k.startswith("_")}).eval()
    whisper = make_random_whisper_checkpoint(Path(folder) / f"whisper_{kind}.pt", dims=arch["whisper"], seed=seed)
    audio_encoder = Audio2Feature(str(whisper), device=device)
    return unet.to(device), vae.to(device), audio_encoder
