#!/bin/bash
# Accuracy of the StableSyncNet checkpoint named in the config (ckpt.inference_ckpt_path) on data.val_data_dir.
set -euo pipefail
python -m eval.eval_syncnet_acc --config_path "${CONFIG_PATH:-configs/syncnet/syncnet_16_pixel_attn.yaml}" "$@"
