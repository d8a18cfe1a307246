#!/bin/bash
# Raw talking-head videos -> training clips (see docs/data_processing.md). Re-run it to resume.
#   bash data_processing_pipeline.sh /data/VoxCeleb2/raw [--num_workers 8] [more options]
# Outputs go next to the input folder: resampled/ shot/ segmented/ affine_transformed/ av_synced_3/
# high_visual_quality/ and manifests/. On SLURM, run one shard per array task, e.g.
#   sbatch --array=0-31 --wrap 'bash data_processing_pipeline.sh /data/raw \
#       --shard_index $SLURM_ARRAY_TASK_ID --num_shards $SLURM_ARRAY_TASK_COUNT'
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: bash data_processing_pipeline.sh INPUT_DIR [python -m data_processing options]" >&2
    exit 2
fi
input_dir="$1"
shift

# Relative paths stay relative to where you run this; the package and its configs come from the repository.
repo="$(cd "$(dirname "$0")" && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
python="${PYTHON:-python}"
if [ -z "${PYTHON:-}" ] && [ -x "$repo/.venv/bin/python" ]; then
    python="$repo/.venv/bin/python"
fi

exec "$python" -m data_processing \
    --input_dir "$input_dir" \
    --resolution 256 \
    --sync_conf_threshold 3 \
    "$@"
