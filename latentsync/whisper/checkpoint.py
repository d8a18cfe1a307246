"""Loading the audio encoder of an openai-whisper checkpoint (`{"dims", "model_state_dict"}`, e.g. tiny.pt).

Only the encoder is built: the text decoder (most of whisper's vocabulary-sized weights) is never used for
lip-sync features. The checkpoint's `encoder.positional_embedding` buffer is loaded, not recomputed: the
published checkpoints store fp16-rounded sinusoids, and recomputing them in fp32 shifts features by ~7e-4.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from whisper.model import AudioEncoder, ModelDimensions

from latentsync.errors import InputError

ENCODER_PREFIX = "encoder."


class WhisperCheckpointError(InputError):
    """A whisper checkpoint is missing or not in the openai format."""


def read_whisper_checkpoint(model_path: str | os.PathLike) -> dict:
    """The checkpoint dict, loaded safely (weights_only) on the CPU."""
    path = Path(model_path)
    if not path.is_file():
        raise WhisperCheckpointError(
            f"whisper checkpoint not found: {path} (download checkpoints/whisper/tiny.pt or small.pt, "
            "see the README)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WhisperCheckpointError(f"cannot read whisper checkpoint {path}: {exc}") from exc
    if not isinstance(checkpoint, dict) or not {"dims", "model_state_dict"} <= checkpoint.keys():
        raise WhisperCheckpointError(
            f"{path} is not an openai-whisper checkpoint: expected a dict with 'dims' and 'model_state_dict'"
        )
    return checkpoint


def build_encoder(checkpoint: dict, source: str = "checkpoint") -> tuple[AudioEncoder, ModelDimensions]:
    """An fp32 `whisper.model.AudioEncoder` holding the checkpoint's encoder weights (strict key match)."""
    dims = ModelDimensions(**checkpoint["dims"])
    encoder = AudioEncoder(dims.n_mels, dims.n_audio_ctx, dims.n_audio_state, dims.n_audio_head, dims.n_audio_layer)
    state = {
        key[len(ENCODER_PREFIX) :]: value
        for key, value in checkpoint["model_state_dict"].items()
        if key.startswith(ENCODER_PREFIX)
    }
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise WhisperCheckpointError(
            f"{source}: encoder weights do not match the dims {checkpoint['dims']}: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    return encoder.float().eval().requires_grad_(False), dims


def load_whisper_encoder(model_path: str | os.PathLike, device: str | torch.device = "cpu"):
    """(encoder on `device`, dims) from an openai-format checkpoint file."""
    encoder, dims = build_encoder(read_whisper_checkpoint(model_path), source=str(model_path))
    return encoder.to(device), dims

