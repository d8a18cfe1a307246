"""Command line of SyncNet training (the trainer is latentsync/training/syncnet_trainer.py).

    python -m scripts.train_syncnet --config_path configs/syncnet/syncnet_16_pixel_attn.yaml [key=value ...]
    latentsync-train-syncnet --config_path configs/syncnet/syncnet_16_pixel_attn.yaml   # installed copy
    accelerate launch --num_processes 8 -m scripts.train_syncnet --config_path ...      # multi-GPU
    accelerate launch --num_processes 2 --cpu -m scripts.train_syncnet --config_path configs/syncnet/tiny.yaml
"""

from __future__ import annotations

import sys

from latentsync.command_line import training_cli
from latentsync.training.syncnet_trainer import main


def run(argv=None) -> int:
    """Console-script entry: parse `--config_path ... [key=value ...]`, train, exit 0."""
    return training_cli(main, "Train StableSyncNet.", "--config_path", "configs/syncnet/syncnet_16_pixel_attn.yaml",
                        "data.batch_size=32 run.max_train_steps=1000", argv)


if __name__ == "__main__":
    sys.exit(run())
