#!/bin/bash
# Train StableSyncNet. Any extra arguments are config overrides, e.g.:
#   ./train_syncnet.sh data.batch_size=64 data.train_fileslist=data/fileslist.txt
# One process by default; NUM_PROCESSES=8 ./train_syncnet.sh for 8 GPUs; multi-node flags via ACCELERATE_ARGS
# (see scripts/launch_training.sh).
set -euo pipefail
cd "$(dirname "$0")"
exec scripts/launch_training.sh scripts.train_syncnet --config_path \
    "${CONFIG:-configs/syncnet/syncnet_16_pixel_attn.yaml}" "$@"
