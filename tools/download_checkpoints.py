"""Fetch the official inference checkpoints into checkpoints/, only if the Hugging Face hub answers quickly.

Offline (or with HF_HUB_OFFLINE=1) it prints exactly which files to put where and exits 0, so set-up
never fails for lack of network. Tests never call this.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# (hub repo, file in the repo, destination relative to checkpoints/)
UNET_FILES = {
    "1.5": [("ByteDance/LatentSync-1.5", "latentsync_unet.pt", "latentsync_unet.pt"),
            ("ByteDance/LatentSync-1.5", "whisper/tiny.pt", "whisper/tiny.pt")],
    "1.6": [("ByteDance/LatentSync-1.6", "latentsync_unet.pt", "latentsync_unet.pt"),
            ("ByteDance/LatentSync-1.6", "whisper/tiny.pt", "whisper/tiny.pt")],
}
VAE_FILES = [("stabilityai/sd-vae-ft-mse", "config.json", "sd-vae-ft-mse/config.json"),
             ("stabilityai/sd-vae-ft-mse", "diffusion_pytorch_model.safetensors",
              "sd-vae-ft-mse/diffusion_pytorch_model.safetensors")]
VERSION_FILE = "latentsync_version.txt"  # tells inference.sh which config (256 or 512 px) the U-Net needs


def wanted_files(version: str) -> list[tuple[str, str, str]]:
    return UNET_FILES[version] + VAE_FILES


def hub_reachable(timeout: float) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        urllib.request.urlopen(f"{endpoint}/api/models/stabilityai/sd-vae-ft-mse", timeout=timeout)
        return True
    except Exception:
        return False


def instructions(version: str, dest: Path, missing: list[tuple[str, str, str]]) -> str:
    lines = [f"The Hugging Face hub is not reachable, so no weights were downloaded. To run inference with "
             f"LatentSync {version}, put these files in place:"]
    for repo, name, target in missing:
        lines.append(f"  {dest / target}    <- https://huggingface.co/{repo}/blob/main/{name}")
    lines.append(f"and write '{version}' into {dest / VERSION_FILE}. Or re-run `source setup_env.sh --version "
                 f"{version}` on a machine with internet access.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", choices=sorted(UNET_FILES), default="1.5")
    parser.add_argument("--dest", type=Path, default=REPO_ROOT / "checkpoints")
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds to wait for the hub")
    args = parser.parse_args(argv)

    missing = [f for f in wanted_files(args.version) if not (args.dest / f[2]).is_file()]
    if not missing:
        print(f"==> checkpoints for LatentSync {args.version} already in {args.dest}")
        return 0
    if not hub_reachable(args.timeout):
        print(instructions(args.version, args.dest, missing))
        return 0

    from huggingface_hub import hf_hub_download

    for repo, name, target in missing:
        print(f"==> downloading {repo}/{name} -> {args.dest / target}")
        # hf_hub_download keeps the repo's sub-path under local_dir, so local_dir is target minus that sub-path.
        local_dir = args.dest / target[: len(target) - len(name)]
        local_dir.mkdir(parents=True, exist_ok=True)
        hf_hub_download(repo_id=repo, filename=name, local_dir=local_dir)
    (args.dest / VERSION_FILE).write_text(args.version + "\n")
    print(f"==> LatentSync {args.version} checkpoints ready in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
