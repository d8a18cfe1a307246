#!/bin/bash
# Train the LatentSync U-Net. Any extra arguments are config overrides, e.g.:
#   CONFIG=configs/unet/stage2.yaml ./train_unet.sh ckpt.resume_ckpt_path=output/unet_stage1/.../checkpoint-10000.pt
# One process by default; NUM_PROCESSES=8 ./train_unet.sh for 8 GPUs (accelerate handles the processes).
# Multi-node: pass accelerate's flags through ACCELERATE_ARGS, e.g.
#   ACCELERATE_ARGS="--num_machines 2 --machine_rank 0 --main_process_ip 10.0.0.1 --main_process_port 29500"
set -euo pipefail
cd "$(dirname "$0")"
CONFIG="${CONFIG:-configs/unet/stage1_512.yaml}"
NUM_PROCESSES="${NUM_PROCESSES:-1}"
# Several processes go through accelerate's torchrun launcher (--multi_gpu). On a machine without CUDA the
# trainer's Accelerator runs them on the CPU over gloo (accelerate's own --cpu flag starts only one process
# unless MPI is set up).
MULTI=""
if [ "$NUM_PROCESSES" -gt 1 ]; then MULTI="--multi_gpu"; fi
exec accelerate launch $MULTI --num_processes "$NUM_PROCESSES" ${ACCELERATE_ARGS:-} \
    -m scripts.train_unet --unet_config_path "$CONFIG" "$@"
