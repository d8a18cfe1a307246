"""Every layer's output of whisper's audio encoder, as LatentSync conditions on them.

Whisper's `AudioEncoder.forward` returns only the final, `ln_post`-normalised states. LatentSync uses the
input embedding (conv stem + positional embedding) and each residual block's output, without `ln_post`,
so the encoder's own submodules are run here one by one, with the same dtype handling as
`AudioEncoder.forward`: weights stay fp32 and are cast per op to the input dtype (fp16 on CUDA).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from whisper.model import AudioEncoder


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
