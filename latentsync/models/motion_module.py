"""AnimateDiff-style motion module: self-attention along the frame axis at every pixel.

The official stage-2 configs still build these modules (`use_motion_module: true`), so their checkpoints
carry the weights; LatentSync's authors note the final model was not trained to rely on them. With
`zero_initialize` the output projection starts at zero, so a fresh module is the identity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from diffusers.models.attention import FeedForward
from torch import nn

from .attention import TRANSFORMER_GROUPNORM_EPS, Attention
from .resnet import fold_frames

__all__ = ["get_motion_module", "VanillaTemporalModule", "sinusoidal_positions"]

# Fixed by the official TemporalTransformer3DModel (its yaml never sets them).
MOTION_MODULE_NORM_GROUPS = 32


def sinusoidal_positions(max_len: int, dim: int) -> torch.Tensor:
    """(1, max_len, dim) transformer encoding: sin at even channels, cos at odd ones (interleaved)."""
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    inv_freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angles = position * inv_freq
    table = torch.zeros(1, max_len, dim)
    table[0, :, 0::2] = torch.sin(angles)
    table[0, :, 1::2] = torch.cos(angles)
    return table


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal frame-position table (a state-dict buffer `pe`) to (batch, frames, dim)."""

    def __init__(self, dim: int, max_len: int):
        super().__init__()
        self.register_buffer("pe", sinusoidal_positions(max_len, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[:, : x.shape[-2]]


class VersatileAttention(Attention):
    """Temporal self-attention; the position encoding is added to its input (queries, keys and values)."""

    def __init__(self, dim: int, heads: int, dim_head: int, position_encoding: bool, max_len: int):
        super().__init__(dim, heads, dim_head)
        self.pos_encoder = PositionalEncoding(dim, max_len) if position_encoding else None

    def forward(self, hidden_states: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if self.pos_encoder is not None:
            hidden_states = self.pos_encoder(hidden_states)
        return super().forward(hidden_states)


class TemporalTransformerBlock(nn.Module):
    """Pre-norm temporal attention blocks, then a GEGLU MLP, each with a residual."""

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        num_attention_blocks: int,
        position_encoding: bool,
        max_len: int,
    ):
        super().__init__()
        self.attention_blocks = nn.ModuleList(
            VersatileAttention(dim, heads, dim_head, position_encoding, max_len) for _ in range(num_attention_blocks)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_attention_blocks))
        self.ff = FeedForward(dim, activation_fn="geglu")
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`hidden_states` (b*h*w, frames, dim): one frame sequence per pixel."""
        for attention, norm in zip(self.attention_blocks, self.norms, strict=True):
            hidden_states = attention(norm(hidden_states)) + hidden_states
        return self.ff(self.ff_norm(hidden_states)) + hidden_states


class TemporalTransformer3DModel(nn.Module):
    """Per-frame GroupNorm, then pixels become sequences over frames: (b*h*w, f, c) tokens."""

    def __init__(
        self,
        in_channels: int,
        heads: int,
        dim_head: int,
        num_layers: int,
        num_attention_blocks: int,
        position_encoding: bool,
        max_len: int,
    ):
        super().__init__()
        inner_dim = heads * dim_head
        self.max_frames = max_len
        self.norm = nn.GroupNorm(MOTION_MODULE_NORM_GROUPS, in_channels, eps=TRANSFORMER_GROUPNORM_EPS)
        self.proj_in = nn.Linear(in_channels, inner_dim)
        self.transformer_blocks = nn.ModuleList(
            TemporalTransformerBlock(inner_dim, heads, dim_head, num_attention_blocks, position_encoding, max_len)
            for _ in range(num_layers)
        )
        self.proj_out = nn.Linear(inner_dim, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, num_frames, height, width = x.shape
        frames = self.norm(fold_frames(x))
        # (b*f, c, h, w) -> (b, h, w, f, c) -> (b*h*w, f, c): one copy in, one copy out.
        tokens = frames.unflatten(0, (batch, num_frames)).permute(0, 3, 4, 1, 2).reshape(-1, num_frames, channels)
        tokens = self.proj_in(tokens)
        for block in self.transformer_blocks:
            tokens = block(tokens)
        tokens = self.proj_out(tokens)
        out = tokens.unflatten(0, (batch, height, width)).permute(0, 4, 3, 1, 2)  # (b, c, f, h, w)
        return x + out  # x first: the sum keeps x's frame-major memory layout


class VanillaTemporalModule(nn.Module):
    """Wrapper holding `temporal_transformer` (the official key prefix); optionally zero-initialised."""

    def __init__(
        self,
        in_channels: int,
        num_attention_heads: int = 8,
        num_transformer_block: int = 2,
        attention_block_types: Sequence[str] = ("Temporal_Self", "Temporal_Self"),
        cross_frame_attention_mode=None,
        temporal_position_encoding: bool = False,
        temporal_position_encoding_max_len: int = 24,
        temporal_attention_dim_div: int = 1,
        zero_initialize: bool = True,
    ):
        super().__init__()
        unsupported = [kind for kind in attention_block_types if kind != "Temporal_Self"]
        if unsupported:
            raise ValueError(
                f"motion_module_kwargs.attention_block_types {list(attention_block_types)}: only 'Temporal_Self' "
                "is supported (the official configs use two of them)"
            )
        if cross_frame_attention_mode is not None:
            raise ValueError("motion_module_kwargs.cross_frame_attention_mode is not supported (official value: null)")
        self.temporal_transformer = TemporalTransformer3DModel(
            in_channels,
            heads=num_attention_heads,
            dim_head=in_channels // num_attention_heads // temporal_attention_dim_div,
            num_layers=num_transformer_block,
            num_attention_blocks=len(attention_block_types),
            position_encoding=temporal_position_encoding,
            max_len=temporal_position_encoding_max_len,
        )
        if zero_initialize:
            nn.init.zeros_(self.temporal_transformer.proj_out.weight)
            nn.init.zeros_(self.temporal_transformer.proj_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal_transformer(x)


def get_motion_module(in_channels: int, motion_module_type: str, motion_module_kwargs: dict) -> nn.Module:
    """Build the motion module a config names (`motion_module_type`, only 'Vanilla' exists)."""
    if motion_module_type != "Vanilla":
        raise ValueError(f"unknown motion_module_type {motion_module_type!r}: the official configs use 'Vanilla'")
    return VanillaTemporalModule(in_channels, **(motion_module_kwargs or {}))
