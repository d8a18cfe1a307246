#!/usr/bin/env bash
# Lip-sync a video to an audio track with the official checkpoints.
#   ./inference.sh                                  # the project's own demo clip (made on first use)
#   ./inference.sh VIDEO AUDIO OUTPUT [extra flags for scripts/inference.py, e.g. --preset fast]
# The U-Net config follows checkpoints/latentsync_version.txt (1.5 -> 256 px, 1.6 -> 512 px).
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] && PY=.venv/bin/python || PY=python

version=$(cat checkpoints/latentsync_version.txt 2>/dev/null || echo 1.5)
config=configs/unet/stage2.yaml
[ "$version" = "1.6" ] && config=configs/unet/stage2_512.yaml

if [ $# -ge 3 ]; then
  video=$1 audio=$2 out=$3; shift 3
else
  [ -f assets/demo_video.mp4 ] || "$PY" -m tools.make_demo_clip --out_dir assets
  video=assets/demo_video.mp4 audio=assets/demo_audio.wav out=assets/demo_video_out.mp4
fi

exec "$PY" -m scripts.inference \
  --unet_config_path "$config" \
  --inference_ckpt_path checkpoints/latentsync_unet.pt \
  --video_path "$video" --audio_path "$audio" --video_out_path "$out" \
  --seed 1247 "$@"   # steps, guidance, sampler, DeepCache: --preset quality (default, the official run) or fast
