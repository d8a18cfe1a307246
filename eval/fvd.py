"""Fréchet Video Distance over I3D features (StyleGAN-V's TorchScript port of the tf-hub I3D).

The Fréchet arithmetic follows the official eval/fvd.py (float32 means, float64 covariances, matrix square
root via SciPy, real part kept), so numbers match it. The I3D model is TorchScript: loading it runs code
stored in the file, so `load_i3d` only opens a path the user put there (see docs/evaluation.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from latentsync.checkpoint import CheckpointError

I3D_KWARGS = dict(rescale=False, resize=False, return_features=True)  # the 400 logits before the softmax


class FVDSampleSizeWarning(UserWarning):
    """Fewer videos than feature dimensions: the covariances are singular and FVD is noisy."""


def compute_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (in the features' dtype) and unbiased covariance (float64) of (N, d) features."""
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """Principal matrix square root without SciPy's removed `disp` argument (gone in SciPy 1.18)."""
    result = scipy.linalg.sqrtm(matrix)
    return result[0] if isinstance(result, tuple) else result


def warn_if_few_samples(num_videos: int, feature_dim: int) -> None:
    if num_videos <= feature_dim:
        warnings.warn(
            f"FVD from {num_videos} videos with {feature_dim}-dim features: the covariance has rank < {feature_dim}, "
            f"so the value is biased and noisy (use more than {feature_dim} videos per set for a stable number; "
            "compare only values computed with the same number of videos)",
            FVDSampleSizeWarning,
            stacklevel=3,
        )


def compute_fvd(feats_fake: np.ndarray, feats_real: np.ndarray) -> float:
    """Fréchet distance ||mu_f - mu_r||^2 + Tr(S_f + S_r - 2 sqrt(S_f S_r)) between two (N, d) feature sets."""
    feats_fake, feats_real = np.asarray(feats_fake), np.asarray(feats_real)
    if feats_fake.ndim != 2 or feats_real.ndim != 2 or feats_fake.shape[1] != feats_real.shape[1]:
        raise ValueError(f"need (N, d) feature matrices with the same d, got {feats_fake.shape} and {feats_real.shape}")
    if min(len(feats_fake), len(feats_real)) < 2:
        raise ValueError("FVD needs at least 2 videos per set (a covariance from one sample is undefined)")
    warn_if_few_samples(min(len(feats_fake), len(feats_real)), feats_fake.shape[1])
    mu_fake, sigma_fake = compute_stats(feats_fake)
    mu_real, sigma_real = compute_stats(feats_real)
    mean_term = np.square(mu_fake - mu_real).sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # SciPy warns on the singular products of small sets
        root = _sqrtm(np.dot(sigma_fake, sigma_real))
    return float(np.real(mean_term + np.trace(sigma_fake + sigma_real - root * 2)))


def load_i3d(path: str | Path, device: str = "cpu") -> torch.jit.ScriptModule:
    """Load the I3D TorchScript model. TorchScript files contain code that runs on load: only use a file from a
    source you trust (the LatentSync release's checkpoints/auxiliary/i3d_torchscript.pt)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"I3D model not found: {path}. Put i3d_torchscript.pt (LatentSync checkpoints, auxiliary/) there; "
            "see docs/evaluation.md"
        )
    try:
        with open(path, "rb") as f:
            return torch.jit.load(f, map_location=device).eval()
    except (RuntimeError, ValueError, EOFError) as exc:  # not a TorchScript archive, truncated, wrong file
        raise CheckpointError(f"cannot load the I3D model {path}: {' '.join(str(exc).split())[:200]}; re-download "
                              "i3d_torchscript.pt (see docs/evaluation.md)") from None


@torch.no_grad()
def i3d_features(i3d, videos: torch.Tensor, device: str = "cpu", batch_size: int = 16) -> np.ndarray:
    """(N, F, H, W, C) videos in [0, 1] -> (N, 400) float32 I3D features (input permuted to N, C, F, H, W)."""
    if videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"videos must be (N, F, H, W, 3), got {tuple(videos.shape)}")
    feats = [
        i3d(videos[i : i + batch_size].permute(0, 4, 1, 2, 3).to(device), **I3D_KWARGS).cpu()
        for i in range(0, len(videos), batch_size)
    ]
    return torch.cat(feats).numpy()
