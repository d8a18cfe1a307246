"""Spatial transformer of the 3-D U-Net: per-frame self-attention, audio cross-attention, GEGLU MLP.

Parameter names and shapes follow the official LatentSync modules (diffusers 0.32 naming), so official
checkpoints load unchanged: `attn1`/`attn2` with bias-free `to_q/to_k/to_v` and `to_out.0`,
`ff.net.0.proj` / `ff.net.2`, and 1x1-convolution `proj_in`/`proj_out`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from torch import nn

from .resnet import fold_frames, unfold_frames

__all__ = ["multi_head_attention", "Attention", "BasicTransformerBlock", "Transformer3DModel"]

# Fixed by the official architecture (not configurable there either).
TRANSFORMER_GROUPNORM_EPS = 1e-6


def multi_head_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Scaled dot-product attention over the second-to-last axis of `(..., tokens, heads*dim)` tensors."""
    q, k, v = (t.unflatten(-1, (heads, -1)).transpose(-3, -2) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v)
    return out.transpose(-3, -2).flatten(-2)


class Attention(nn.Module):
    """Multi-head (cross-)attention with `heads` heads of `dim_head` channels each (SDPA, default scale)."""

    def __init__(
        self,
        query_dim: int,
        heads: int,
        dim_head: int,
        cross_attention_dim: int | None = None,
        bias: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        inner_dim = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner_dim, bias=bias)
        self.to_k = nn.Linear(cross_attention_dim or query_dim, inner_dim, bias=bias)
        self.to_v = nn.Linear(cross_attention_dim or query_dim, inner_dim, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(inner_dim, query_dim), nn.Dropout(dropout)])

    def forward(self, hidden_states: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = hidden_states if context is None else context
        out = multi_head_attention(self.to_q(hidden_states), self.to_k(context), self.to_v(context), self.heads)
        return self.to_out[1](self.to_out[0](out))


class BasicTransformerBlock(nn.Module):
    """Token block: x += attn1(norm1 x); x += attn2(norm2 x, audio) [if audio]; x += ff(norm3 x)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        cross_attention_dim: int | None,
        add_audio_layer: bool,
        dropout: float = 0.0,
    ):
        super().__init__()
        # Registration order = official state-dict order (norm1, attn1, norm2, attn2, ff, norm3).
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, dim_head, dropout=dropout)
        if add_audio_layer:
            self.norm2 = nn.LayerNorm(dim)
            self.attn2 = Attention(dim, heads, dim_head, cross_attention_dim=cross_attention_dim, dropout=dropout)
        else:
            self.norm2 = None
            self.attn2 = None
        self.ff = FeedForward(dim, dropout=dropout, activation_fn="geglu")
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, hidden_states: torch.Tensor, audio: torch.Tensor | None = None) -> torch.Tensor:
        """`hidden_states` (b*f, tokens, dim); `audio` (b*f, n, cross_attention_dim) or None (skips attn2)."""
        hidden_states = self.attn1(self.norm1(hidden_states)) + hidden_states
        if self.attn2 is not None and audio is not None:
            hidden_states = self.attn2(self.norm2(hidden_states), audio) + hidden_states
        return self.ff(self.norm3(hidden_states)) + hidden_states


class Transformer3DModel(nn.Module):
    """Per-frame spatial transformer with a residual around it: GN -> 1x1 proj_in -> blocks -> proj_out.

    `num_attention_heads` is a head *count*: the official yaml `attention_head_dim: 8` arrives here as
    8 heads of `in_channels // 8` channels.
    """

    def __init__(
        self,
        num_attention_heads: int,
        attention_head_dim: int,
        in_channels: int,
        num_layers: int = 1,
        norm_num_groups: int = 32,
        cross_attention_dim: int | None = None,
        add_audio_layer: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        inner_dim = num_attention_heads * attention_head_dim
        self.norm = nn.GroupNorm(norm_num_groups, in_channels, eps=TRANSFORMER_GROUPNORM_EPS)
        self.proj_in = nn.Conv2d(in_channels, inner_dim, kernel_size=1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(
                inner_dim,
                num_attention_heads,
                attention_head_dim,
                cross_attention_dim=cross_attention_dim,
                add_audio_layer=add_audio_layer,
                dropout=dropout,
            )
            for _ in range(num_layers)
        )
        self.proj_out = nn.Conv2d(inner_dim, in_channels, kernel_size=1)

    def forward(self, x: torch.Tensor, audio: torch.Tensor | None = None) -> torch.Tensor:
        """`x` (b, c, f, h, w); `audio` (b*f, n, d) or None. The 1x1 convolutions run as token matmuls."""
        num_frames, height, width = x.shape[2:]
        residual = fold_frames(x)
        frames = self.norm(residual)
        # (b*f, c, h, w) -> (b*f, h*w, c): a view for channels-last memory.
        tokens = frames.permute(0, 2, 3, 1).flatten(1, 2)
        tokens = F.linear(tokens, self.proj_in.weight.flatten(1), self.proj_in.bias)
        for block in self.transformer_blocks:
            tokens = block(tokens, audio)
        tokens = F.linear(tokens, self.proj_out.weight.flatten(1), self.proj_out.bias)
        out = tokens.unflatten(1, (height, width)).permute(0, 3, 1, 2)
        return unfold_frames(residual + out, num_frames)
