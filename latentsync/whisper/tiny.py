"""Random whisper checkpoints in the openai format, for tests and benchmarks that must not download weights.

Weights follow the reference goldens' scheme so every layer matters and activations stay O(1):
norm weights 1 + 0.1·N(0,1), norm biases 0.1·N(0,1), matrices N(0,1)/sqrt(fan_in), other biases 0.05·N(0,1).
Buffers (the sinusoidal positional embedding) are kept as whisper builds them. Stored as float16, like the
published checkpoints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from whisper.model import ModelDimensions, Whisper

from latentsync.config import CONFIG_DIR

TINY_DIMS_PATH = CONFIG_DIR / "whisper" / "tiny_dims.json"


def load_dims(dims: dict | str | os.PathLike | None = None) -> dict:
    """Model dims as a plain dict: given directly, read from a JSON file, or configs/whisper/tiny_dims.json."""
    if dims is None:
        dims = TINY_DIMS_PATH
    if isinstance(dims, dict):
        return dict(dims)
    return json.loads(Path(dims).read_text())


def _randomize_(model: torch.nn.Module, generator: torch.Generator) -> None:
    norm_params = {
        id(p) for m in model.modules() if isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm)) for p in m.parameters()
    }
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if id(param) in norm_params:
                param.copy_(1 + 0.1 * noise if name.endswith("weight") else 0.1 * noise)
            elif param.ndim >= 2:
                param.copy_(noise / (param.numel() / param.shape[0]) ** 0.5)
            else:
                param.copy_(0.05 * noise)


def make_random_whisper_checkpoint(path: str | os.PathLike, dims: dict | str | os.PathLike | None = None,
                                   seed: int = 0) -> Path:
    """Write `{"dims", "model_state_dict"}` (fp16) for a seeded random Whisper with `dims`; returns the path."""
    dims = load_dims(dims)
    model = Whisper(ModelDimensions(**dims))
    _randomize_(model, torch.Generator().manual_seed(seed))
    state = {key: value.half() for key, value in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": dims, "model_state_dict": state}, path)
    return path
