#!/usr/bin/env bash
# The GPU check (issue 13): CUDA-marked tests, then the quality and fast presets end to end on
# ../shared/media/demo1 at 256 and 512 px with random real-size weights, fp16. Writes gpu_check.json into
# $OUT (or --out DIR). Needs only the working tree: it uses .venv when present, else $PYTHON (default
# python3) when that has torch and diffusers (a GPU machine's own stack), else runs setup_env.sh --no-weights.
# CPU fallback: bash benchmarks/gpu_check.sh --device cpu --frames 16 --models tiny --sizes 64 128
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
if [ ! -x "$py" ]; then
  py="${PYTHON:-python3}"
  if ! "$py" -c "import torch, diffusers" >/dev/null 2>&1; then
    # shellcheck disable=SC1091
    source setup_env.sh --no-weights
    py=.venv/bin/python
  fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" -m benchmarks.gpu_check "$@"
