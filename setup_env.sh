#!/usr/bin/env bash
# One-command set-up: `source setup_env.sh` (or `bash setup_env.sh`).
#   - creates .venv (if missing) and installs the pinned stack (skipped when already up to date);
#   - makes an `ffmpeg` available (the system one, else the imageio-ffmpeg binary linked into .venv/bin);
#   - activates the venv (when sourced);
#   - downloads the official inference checkpoints only if the Hugging Face hub answers within a few
#     seconds; otherwise prints exactly which files to put where, and still succeeds.
# Options: --version 1.5|1.6 (default 1.5)   --no-weights   --cpu | --cuda
# No conda, no sudo, no system packages needed. Re-running is fast and idempotent.

_ls_main() {
  local version="1.5" weights=1 accel="auto" arg
  while [ $# -gt 0 ]; do
    arg="$1"; shift
    case "$arg" in
      --version) version="${1:-}"; shift ;;
      --version=*) version="${arg#--version=}" ;;
      --no-weights) weights=0 ;;
      --cpu) accel="cpu" ;;
      --cuda) accel="cuda" ;;
      -h|--help) sed -n '2,9p' "${BASH_SOURCE[0]}"; return 0 ;;
      *) echo "setup_env.sh: unknown option '$arg' (see --help)" >&2; return 2 ;;
    esac
  done
  case "$version" in 1.5|1.6) ;; *) echo "setup_env.sh: --version must be 1.5 or 1.6, got '$version'" >&2; return 2 ;; esac

  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" || return 1
  local venv="$root/.venv" py="${PYTHON:-python3}"

  if ! command -v "$py" >/dev/null 2>&1; then
    echo "setup_env.sh: $py not found; install Python 3.10+ first" >&2; return 1
  fi
  if [ ! -x "$venv/bin/python" ]; then
    echo "==> creating $venv"
    "$py" -m venv "$venv" || { echo "setup_env.sh: could not create the venv (on Debian/Ubuntu: apt install python3-venv)" >&2; return 1; }
  fi

  # Install only when the requirement files changed since the last successful install.
  local stamp="$venv/.latentsync-install-stamp" want
  want="$(cat "$root/constraints.txt" "$root/requirements.txt" "$root/requirements-nodeps.txt" "$root/requirements-dev.txt" "$root/pyproject.toml" | cksum) accel=$accel"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing the pinned stack into $venv (first time: ~2 minutes, ~2.5 GB)"
    local pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
    local torch_index=()
    if [ "$accel" = "cpu" ] && "$venv/bin/python" -c "import urllib.request as u; u.urlopen('https://download.pytorch.org/whl/cpu/', timeout=4)" >/dev/null 2>&1; then
      torch_index=(--extra-index-url https://download.pytorch.org/whl/cpu)  # CPU-only torch: ~200 MB instead of several GB
    fi
    "${pip[@]}" install "${torch_index[@]}" -c "$root/constraints.txt" -r "$root/requirements.txt" -r "$root/requirements-dev.txt" \
      || { echo "setup_env.sh: pip install failed (see above)" >&2; return 1; }
    # These three declare dependencies that would pull triton, torchvision, jax or a second cv2: --no-deps.
    "${pip[@]}" install --no-deps -c "$root/constraints.txt" -r "$root/requirements-nodeps.txt" \
      || { echo "setup_env.sh: pip install (--no-deps packages) failed" >&2; return 1; }
    "${pip[@]}" install --no-deps -e "$root" || { echo "setup_env.sh: installing the project failed" >&2; return 1; }
    echo "$want" > "$stamp"
  else
    echo "==> $venv is up to date"
  fi

  # ffmpeg: whisper's loader and our media I/O call the `ffmpeg` executable.
  if ! command -v ffmpeg >/dev/null 2>&1 || [ -L "$venv/bin/ffmpeg" ]; then
    local ff
    ff="$("$venv/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')" \
      && ln -sf "$ff" "$venv/bin/ffmpeg" && echo "==> ffmpeg: linked the imageio-ffmpeg binary into $venv/bin"
  fi

  if [ "$accel" = "cuda" ]; then
    "$venv/bin/python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
      || echo "warning: --cuda given but torch sees no CUDA device; inference will run on the CPU" >&2
  fi

  if [ "$weights" = 1 ]; then
    "$venv/bin/python" "$root/tools/download_checkpoints.py" --version "$version" --dest "$root/checkpoints" || true
  fi

  # Activate when sourced; when executed, say how.
  if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # shellcheck disable=SC1091
    source "$venv/bin/activate"
    export GRADIO_ANALYTICS_ENABLED=False
    echo "==> ready: the venv is active (python: $(command -v python))"
  else
    echo "==> ready. Activate the environment with: source $venv/bin/activate"
  fi
}

_ls_main "$@"
_ls_status=$?
unset -f _ls_main
if [ "${BASH_SOURCE[0]}" = "$0" ]; then exit $_ls_status; else return $_ls_status; fi
