#!/bin/bash
# SyncNet confidence / distance / offset of one video (or use --videos_dir DIR for a folder).
# Extra arguments are passed through, e.g. --json_out sync.json or tracking.min_track=40.
set -euo pipefail
python -m eval.eval_sync_conf --video_path "${VIDEO_PATH:-video_out.mp4}" "$@"
