"""TREPA: temporal representation alignment between generated and real clips.

Both clips go through a frozen VideoMAE-v2; the loss is the MSE between their L2-normalised clip
features, i.e. mean over the batch of (2 - 2 cos) / feature_dim. Small by construction (the
official stage-1/2 configs weight it by 10).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from latentsync.config import REPO_ROOT, load_config
from latentsync.trepa.videomae import VIT_G_CONFIG, VideoMAEConfig, VideoMAEv2, load_videomae


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TREPALoss(nn.Module):
    """`loss = TREPALoss(...)(videos_fake, videos_real)` with (b, c, f, h, w) videos in [-1, 1].

    By default loads the official ViT-g checkpoint named in configs/trepa/videomae_vit_g.yaml.
    Pass `model=` to use an already-built VideoMAEv2 (tests, small demos). The extractor runs in
    `dtype` (fp16 on CUDA like the official loss, fp32 on CPU); normalisation and the MSE are done
    in fp32. Gradients flow into `videos_fake`; the extractor itself is frozen.
    """

    def __init__(
        self,
        device: str | torch.device | None = None,
        ckpt_path: str | Path | None = None,
        with_cp: bool = False,
        dtype: torch.dtype | None = None,
        model: VideoMAEv2 | None = None,
        config_path: str | Path = VIT_G_CONFIG,
    ):
        super().__init__()
        cfg = load_config(config_path)
        device = torch.device(device) if device is not None else _default_device()
        if dtype is None:
            dtype = torch.float16 if device.type == "cuda" else torch.float32
        if model is None:
            ckpt_path = ckpt_path or REPO_ROOT / cfg.loss.checkpoint
            model = load_videomae(ckpt_path, VideoMAEConfig.from_dict(cfg.model), with_cp=with_cp)
        model.with_cp = with_cp
        self.model = model.eval().to(device=device, dtype=dtype).requires_grad_(False)
        self.input_size = int(cfg.loss.input_size)
        self.resize_mode = str(cfg.loss.resize_mode)

    def train(self, mode: bool = True) -> TREPALoss:
        """The extractor stays in eval mode whatever the surrounding training loop does."""
        super().train(mode)
        self.model.eval()
        return self

    def prepare(self, videos: torch.Tensor) -> torch.Tensor:
        """(b, c, f, h, w) in [-1, 1] -> model input: each frame resized to the input size, mapped to [0, 1].

        No mean/std normalisation: the official loss feeds [0, 1] values straight in.
        """
        if videos.ndim != 5:
            raise ValueError(f"TREPA expects videos as (b, c, f, h, w), got shape {tuple(videos.shape)}")
        b, c, f, h, w = videos.shape
        param = next(self.model.parameters())
        frames = videos.to(device=param.device, dtype=param.dtype).transpose(1, 2).reshape(b * f, c, h, w)
        size = (self.input_size, self.input_size)
        frames = F.interpolate(frames, size=size, mode=self.resize_mode, align_corners=False)
        resized = frames.reshape(b, f, c, *size).transpose(1, 2)
        return (resized / 2 + 0.5).clamp(0, 1)

    def features(self, videos: torch.Tensor) -> torch.Tensor:
        """Unit-length clip features (b, embed_dim) in fp32."""
        return F.normalize(self.model.forward_features(self.prepare(videos)).float(), p=2, dim=1)

    def forward(self, videos_fake: torch.Tensor, videos_real: torch.Tensor) -> torch.Tensor:
        if videos_fake.shape != videos_real.shape:
            raise ValueError(
                f"TREPA needs clips of the same shape, got fake {tuple(videos_fake.shape)} "
                f"and real {tuple(videos_real.shape)}"
            )
        return F.mse_loss(self.features(videos_fake), self.features(videos_real))
