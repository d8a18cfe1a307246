#!/bin/bash
# Train the LatentSync U-Net. Any extra arguments are config overrides, e.g.:
#   CONFIG=configs/unet/stage2.yaml ./train_unet.sh ckpt.resume_ckpt_path=output/unet_stage1/.../checkpoint-10000.pt
# One process by default; NUM_PROCESSES=8 ./train_unet.sh for 8 GPUs; multi-node flags via ACCELERATE_ARGS
# (see scripts/launch_training.sh).
set -euo pipefail
cd "$(dirname "$0")"
exec scripts/launch_training.sh scripts.train_unet --unet_config_path \
    "${CONFIG:-configs/unet/stage1_512.yaml}" "$@"
