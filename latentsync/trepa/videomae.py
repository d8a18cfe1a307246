"""VideoMAE-v2 video ViT, the frozen feature extractor behind the TREPA loss.

Only what TREPA needs is implemented: tubelet patch embedding, a fixed sinusoid position table,
pre-norm transformer blocks, mean pooling + `fc_norm` (`forward_features`), and the classifier head
so that official checkpoints (`vit_g_hybrid_pt_1200e_ssv2_ft.pth`) load strictly with their own key
names. Stochastic depth and dropout are training-only in the original and are left out: the model
is always used frozen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from latentsync.checkpoint import COMMON_CONTAINERS, load_state_dict_exactly, read_checkpoint
from latentsync.config import CONFIG_DIR, load_config

VIT_G_CONFIG = CONFIG_DIR / "trepa" / "videomae_vit_g.yaml"
POSITION_TABLE_BASE = 10000.0
INTERPOLATION_NUDGE = 0.1  # added to the target tubelet count so float rounding cannot lose a step
RELEASED_CHECKPOINT_HINT = (
    "Get auxiliary/vit_g_hybrid_pt_1200e_ssv2_ft.pth from ByteDance/LatentSync-1.5 (see checkpoints/README.md)"
)


@dataclass(frozen=True)
class VideoMAEConfig:
    img_size: int
    patch_size: int
    in_channels: int
    num_frames: int
    tubelet_size: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_hidden_dim: int
    qkv_bias: bool
    layer_norm_eps: float
    num_classes: int

    @classmethod
    def from_dict(cls, values: Mapping) -> VideoMAEConfig:
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in values]
        if missing:
            raise ValueError(f"VideoMAE config lacks {missing} (see configs/trepa/videomae_vit_g.yaml)")
        return cls(**{n: values[n] for n in names})

    @classmethod
    def from_yaml(cls, path: str | Path = VIT_G_CONFIG) -> VideoMAEConfig:
        return cls.from_dict(load_config(path).model)

    @property
    def grid(self) -> tuple[int, int, int]:
        """Token grid (tubelets, rows, columns) of a full clip."""
        side = self.img_size // self.patch_size
        return self.num_frames // self.tubelet_size, side, side


def sinusoid_position_table(num_positions: int, dim: int) -> torch.Tensor:
    """(1, num_positions, dim) float32 table: sin on even channels, cos on odd, pairs share a frequency.

    Computed in float64 and rounded once to float32, as the original (numpy) table is. Always built
    on the CPU so it has real values even when the model is constructed on the meta device.
    """
    positions = torch.arange(num_positions, dtype=torch.float64, device="cpu")[:, None]
    exponents = (2 * (torch.arange(dim, device="cpu") // 2)).to(torch.float64) / dim
    angles = positions / torch.pow(torch.tensor(POSITION_TABLE_BASE, dtype=torch.float64, device="cpu"), exponents)
    table = torch.empty_like(angles)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.to(torch.float32).unsqueeze(0)


class TubeletEmbedding(nn.Module):
    """Non-overlapping (tubelet x patch x patch) Conv3d; tokens ordered time-major, then rows, columns."""

    def __init__(self, cfg: VideoMAEConfig):
        super().__init__()
        self.img_size = cfg.img_size
        kernel = (cfg.tubelet_size, cfg.patch_size, cfg.patch_size)
        self.proj = nn.Conv3d(cfg.in_channels, cfg.embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(
                f"VideoMAE expects {self.img_size}x{self.img_size} frames, got {tuple(x.shape[-2:])} "
                f"(input {tuple(x.shape)} as (b, c, f, h, w)); resize first, as TREPALoss does"
            )
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with learned q and v biases and no k bias (BEiT style)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool):
        super().__init__()
        self.num_heads = num_heads
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        bias = None
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, cfg: VideoMAEConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.attn = Attention(cfg.embed_dim, cfg.num_heads, cfg.qkv_bias)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.mlp = Mlp(cfg.embed_dim, cfg.mlp_hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VideoMAEv2(nn.Module):
    """VideoMAE-v2 ViT (mean-pooling variant) with official state-dict keys.

    `pos_embed` is a non-persistent buffer: official checkpoints do not contain it, and strict
    loading must not expect it.
    """

    def __init__(self, cfg: VideoMAEConfig, with_cp: bool = False):
        super().__init__()
        self.cfg = cfg
        self.with_cp = with_cp
        self.patch_embed = TubeletEmbedding(cfg)
        tubelets, rows, cols = cfg.grid
        self.register_buffer(
            "pos_embed", sinusoid_position_table(tubelets * rows * cols, cfg.embed_dim), persistent=False
        )
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.fc_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.head = nn.Linear(cfg.embed_dim, cfg.num_classes)

    def position_table(self, num_frames: int) -> torch.Tensor:
        """The table for a clip of `num_frames`; other lengths than the configured one are interpolated."""
        tubelets, rows, cols = self.cfg.grid
        wanted = num_frames // self.cfg.tubelet_size
        if wanted == tubelets:
            return self.pos_embed
        dim = self.pos_embed.shape[-1]
        grid = self.pos_embed.permute(0, 2, 1).reshape(1, dim, tubelets, rows, cols)
        scale = (wanted + INTERPOLATION_NUDGE) / tubelets
        grid = F.interpolate(grid, scale_factor=(scale, 1, 1), mode="trilinear")
        return grid.reshape(1, dim, -1).permute(0, 2, 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(b, 3, f, H, W) in [0, 1] -> (b, embed_dim) clip feature."""
        tokens = self.patch_embed(x)
        tokens = tokens + self.position_table(x.shape[2]).to(device=tokens.device, dtype=tokens.dtype).detach()
        use_cp = self.with_cp and torch.is_grad_enabled()
        for block in self.blocks:
            tokens = checkpoint(block, tokens, use_reentrant=False) if use_cp else block(tokens)
        return self.fc_norm(tokens.mean(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (SSv2: 174); TREPA does not use them."""
        return self.head(self.forward_features(x))


def read_videomae_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Weights from an official VideoMAE-v2 file: `{"model": sd}` (preferred), `{"module": sd}` or a bare sd."""
    return read_checkpoint(
        path, what="VideoMAE-v2 checkpoint", hint=RELEASED_CHECKPOINT_HINT, containers=COMMON_CONTAINERS
    ).state_dict


def load_videomae(
    ckpt_path: str | Path | None,
    config: VideoMAEConfig | None = None,
    with_cp: bool = False,
) -> VideoMAEv2:
    """Build the ViT (ViT-g by default) and load a checkpoint strictly; without a path, random weights.

    With a checkpoint the parameters are created on the meta device and then take the loaded
    (memory-mapped) tensors directly, so the 1B-parameter ViT-g is never allocated twice.
    """
    config = config or VideoMAEConfig.from_yaml()
    if not ckpt_path:
        return VideoMAEv2(config, with_cp=with_cp)
    state_dict = read_videomae_state_dict(ckpt_path)
    with torch.device("meta"):
        model = VideoMAEv2(config, with_cp=with_cp)
    load_state_dict_exactly(model, state_dict, "VideoMAE-v2", ckpt_path, assign=True,
                            advice="Use the VideoMAE-v2 config the checkpoint was trained with.")
    return model
