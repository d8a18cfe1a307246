"""Random whisper checkpoints in the openai format and a synthetic test signal, for tests and benchmarks
that must not download weights or data.

Weights follow the reference goldens' scheme so every layer matters and activations stay O(1):
norm weights 1 + 0.1·N(0,1), norm biases 0.1·N(0,1), matrices N(0,1)/sqrt(fan_in), other biases 0.05·N(0,1).
Buffers (the sinusoidal positional embedding) are kept as whisper builds them. Stored as float16, like the
published checkpoints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
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


def randomize_like_goldens_(module: torch.nn.Module, generator: torch.Generator, keep_zero=()) -> None:
    """Overwrite every parameter with the reference goldens' scheme (norm weights 1 + 0.1·N, norm biases 0.1·N,
    matrices N/sqrt(fan_in), other biases 0.05·N), except names containing a `keep_zero` entry (zeroed)."""
    norms = (torch.nn.GroupNorm, torch.nn.LayerNorm)
    norm_params = {id(p) for m in module.modules() if isinstance(m, norms) for p in m.parameters()}
    with torch.no_grad():
        for name, param in module.named_parameters():
            if any(k in name for k in keep_zero):
                param.zero_()
                continue
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
    randomize_like_goldens_(model, torch.Generator().manual_seed(seed))
    state = {key: value.half() for key, value in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": dims, "model_state_dict": state}, path)
    return path


def synthetic_audio(seconds: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A deterministic test signal (float32 in [-1, 1]): chirp + AM tone + gated 3 kHz tone + noise bursts.

    Rich enough that every whisper layer and the SyncNet mel change over time; no speech needed.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    chirp = 0.3 * np.sin(2 * np.pi * (100 * t + 150 * t**2 / max(seconds, 1e-3)))
    am_tone = 0.2 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * np.sin(2 * np.pi * 440 * t)
    gated = 0.15 * (np.sin(2 * np.pi * 1.7 * t) > 0.6) * np.sin(2 * np.pi * 3000 * t)
    bursts = 0.2 * (np.sin(2 * np.pi * 0.9 * t + 1.0) > 0.8) * rng.standard_normal(t.shape)
    noise = 0.01 * rng.standard_normal(t.shape)
    return np.clip(chirp + am_tone + gated + bursts + noise, -1, 1).astype(np.float32)
