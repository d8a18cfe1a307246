#!/bin/bash
# Train StableSyncNet. Any extra arguments are config overrides, e.g.:
#   ./train_syncnet.sh data.batch_size=64 data.train_fileslist=data/fileslist.txt
# One process by default; NUM_PROCESSES=8 ./train_syncnet.sh for 8 GPUs (accelerate handles the processes).
# Multi-node: pass accelerate's flags through ACCELERATE_ARGS, e.g.
#   ACCELERATE_ARGS="--num_machines 2 --machine_rank 0 --main_process_ip 10.0.0.1 --main_process_port 29500"
set -euo pipefail
cd "$(dirname "$0")"
CONFIG="${CONFIG:-configs/syncnet/syncnet_16_pixel_attn.yaml}"
NUM_PROCESSES="${NUM_PROCESSES:-1}"
# Several processes go through accelerate's torchrun launcher (--multi_gpu). On a machine without CUDA the
# trainer's Accelerator runs them on the CPU over gloo (accelerate's own --cpu flag starts only one process
# unless MPI is set up).
MULTI=""
if [ "$NUM_PROCESSES" -gt 1 ]; then MULTI="--multi_gpu"; fi
exec accelerate launch $MULTI --num_processes "$NUM_PROCESSES" ${ACCELERATE_ARGS:-} \
    -m scripts.train_syncnet --config_path "$CONFIG" "$@"
