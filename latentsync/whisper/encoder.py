"""The Whisper audio encoder: loaded from an openai-whisper checkpoint and run layer by layer.

Only the encoder of a `{"dims", "model_state_dict"}` checkpoint (e.g. tiny.pt) is built: the text decoder
(most of whisper's vocabulary-sized weights) is never used for lip-sync features. The checkpoint's
`encoder.positional_embedding` buffer is loaded, not recomputed: the published checkpoints store fp16-rounded
sinusoids, and recomputing them in fp32 shifts features by ~7e-4.

Whisper's `AudioEncoder.forward` returns only the final, `ln_post`-normalised states. LatentSync uses the
input embedding (conv stem + positional embedding) and each residual block's output, without `ln_post`,
so `encoder_layer_outputs` runs the encoder's own submodules one by one, with the same dtype handling as
`AudioEncoder.forward`: weights stay fp32 and are cast per op to the input dtype (fp16 on CUDA).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from whisper.model import AudioEncoder, ModelDimensions

from latentsync.checkpoint import CheckpointError, diff_state_dicts, load_torch_file

ENCODER_PREFIX = "encoder."
DOWNLOAD_HINT = "Download checkpoints/whisper/tiny.pt or small.pt (see the README)."


def read_whisper_checkpoint(model_path: str | os.PathLike) -> dict:
    """The checkpoint dict, loaded safely (weights_only) on the CPU."""
    checkpoint = load_torch_file(model_path, what="whisper checkpoint", hint=DOWNLOAD_HINT)
    if not isinstance(checkpoint, dict) or not {"dims", "model_state_dict"} <= checkpoint.keys():
        raise CheckpointError(
            f"{model_path} is not an openai-whisper checkpoint: expected a dict with 'dims' and 'model_state_dict'"
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
    diff = diff_state_dicts(encoder.state_dict(), state)
    if diff:
        raise CheckpointError(
            f"{source}: encoder weights do not match the dims {checkpoint['dims']}: {diff.describe()}"
        )
    encoder.load_state_dict(state)
    return encoder.float().eval().requires_grad_(False), dims


def load_whisper_encoder(model_path: str | os.PathLike, device: str | torch.device = "cpu"):
    """(encoder on `device`, dims) from an openai-format checkpoint file."""
    encoder, dims = build_encoder(read_whisper_checkpoint(model_path), source=str(model_path))
    return encoder.to(device), dims


@torch.inference_mode()
def encoder_layer_outputs(encoder: AudioEncoder, mel: torch.Tensor) -> torch.Tensor:
    """(B, n_mels, 3000) log-mel windows -> (B, 1500, n_layers + 1, D) in the dtype of `mel`."""
    x = F.gelu(encoder.conv1(mel))
    x = F.gelu(encoder.conv2(x))
    x = x.permute(0, 2, 1)
    if x.shape[1:] != encoder.positional_embedding.shape:
        raise ValueError(
            f"encoder input gives {tuple(x.shape[1:])} positions x channels, "
            f"the checkpoint expects {tuple(encoder.positional_embedding.shape)} (pad windows to 3000 mel frames)"
        )
    x = (x + encoder.positional_embedding).to(x.dtype)
    layers = [x]
    for block in encoder.blocks:
        x = block(x)
        layers.append(x)
    return torch.stack(layers, dim=2)
