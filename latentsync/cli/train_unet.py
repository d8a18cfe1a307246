"""Command line of U-Net training (the trainer is latentsync/training/unet_trainer.py).

    python -m scripts.train_unet --unet_config_path configs/unet/stage1.yaml [key=value ...]
    latentsync-train-unet --unet_config_path configs/unet/stage1.yaml [key=value ...]   # installed copy
    accelerate launch --num_processes 8 -m scripts.train_unet --unet_config_path configs/unet/stage2.yaml
    accelerate launch --multi_gpu --num_machines 2 --machine_rank 0 --main_process_ip HOST ... -m scripts.train_unet ...
"""

from __future__ import annotations

import sys

from latentsync.command_line import training_cli
from latentsync.training.unet_trainer import main


def run(argv=None) -> int:
    """Console-script entry: parse `--unet_config_path ... [key=value ...]`, train, exit 0."""
    return training_cli(main, "Train the LatentSync U-Net.", "--unet_config_path", "configs/unet/stage2.yaml",
                        "data.batch_size=2 ckpt.vae_path=PATH", argv)


if __name__ == "__main__":
    sys.exit(run())
