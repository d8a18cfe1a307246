#!/bin/bash
# Shared launcher of train_unet.sh and train_syncnet.sh:
#   scripts/launch_training.sh MODULE CONFIG_FLAG CONFIG [key=value ...]
# One process by default; NUM_PROCESSES=8 for 8 GPUs (accelerate handles the processes). Multi-node: pass
# accelerate's flags through ACCELERATE_ARGS, e.g.
#   ACCELERATE_ARGS="--num_machines 2 --machine_rank 0 --main_process_ip 10.0.0.1 --main_process_port 29500"
# Several processes go through accelerate's torchrun launcher (--multi_gpu). On a machine without CUDA the
# trainer's Accelerator runs them on the CPU over gloo (accelerate's own --cpu flag starts only one process
# unless MPI is set up).
# A single process on one machine runs the trainer directly (no launcher in between), so its exit code is the
# trainer's: 2 with one `error:` line for a bad config, override, file list or checkpoint, 130/143 when
# stopped. Through accelerate's launcher a failed run exits 1 (the trainer's `error:` line is in the log).
set -euo pipefail
module="$1" config_flag="$2" config="$3"
shift 3
NUM_PROCESSES="${NUM_PROCESSES:-1}"
if [ "$NUM_PROCESSES" -eq 1 ] && [ -z "${ACCELERATE_ARGS:-}" ]; then
    exec python -m "$module" "$config_flag" "$config" "$@"
fi
MULTI=""
if [ "$NUM_PROCESSES" -gt 1 ]; then MULTI="--multi_gpu"; fi
exec accelerate launch $MULTI --num_processes "$NUM_PROCESSES" ${ACCELERATE_ARGS:-} \
    -m "$module" "$config_flag" "$config" "$@"
