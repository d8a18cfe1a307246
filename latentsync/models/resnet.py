"""Frame-wise convolutions, up/down-samplers and the time-conditioned ResNet block of the 3-D U-Net.

Video activations are 5-D `(batch, channels, frames, height, width)` tensors stored *frame-major*: the
frames of a clip are folded into the batch for each per-frame `Conv2d` (`fold_frames`) and unfolded
again as free views. Where it is faster (see `CPU_CHANNELS_LAST_MIN_PIXELS`) they are also channels-last
(`torch.channels_last_3d` as a 5-D tensor): GroupNorm over the 5-D tensor then runs natively without a
copy and the spatial transformers read their tokens straight from memory. Every function here accepts
any layout; a copy happens only where a view is impossible, as with the official `rearrange` calls.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "fold_frames",
    "unfold_frames",
    "activation",
    "InflatedConv3d",
    "Downsample3D",
    "Upsample3D",
    "ResnetBlock3D",
]


def fold_frames(x: torch.Tensor) -> torch.Tensor:
    """`(b, c, f, h, w) -> (b*f, c, h, w)`: frames become batch entries (a view for frame-major memory)."""
    return x.transpose(1, 2).flatten(0, 1)


def unfold_frames(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Inverse of `fold_frames`: `(b*f, c, h, w) -> (b, c, f, h, w)`, always a view."""
    return x.unflatten(0, (-1, num_frames)).transpose(1, 2)


def activation(name: str):
    """The pointwise non-linearity a config names (`act_fn`); the official configs all use SiLU."""
    if name in ("silu", "swish"):
        return F.silu
    if name == "mish":
        return F.mish
    raise ValueError(f"unsupported act_fn {name!r}: use 'silu' (the official configs), 'swish' or 'mish'")


# On CPU, oneDNN's channels-last convolutions beat the blocked NCHW path from 16x16 pixels per frame
# up, and lose by up to 2x below (1280-channel layers at 8x8 / 4x4); see docs/benchmarks.md.
CPU_CHANNELS_LAST_MIN_PIXELS = 16 * 16


class InflatedConv3d(nn.Conv2d):
    """A 2-D convolution applied to every frame of a 5-D video tensor (weights stay `Conv2d`-shaped).

    `prefer_channels_last` picks the memory layout the convolution runs in (the result keeps it):
    channels-last, except for small frames on CPU where plain NCHW is faster.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prefer_channels_last = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = fold_frames(x)
        height, width = frames.shape[-2:]
        if self.prefer_channels_last and (
            frames.device.type != "cpu" or height * width >= CPU_CHANNELS_LAST_MIN_PIXELS
        ):
            frames = frames.contiguous(memory_format=torch.channels_last)
        else:
            frames = frames.contiguous()
        return unfold_frames(super().forward(frames), x.shape[2])


class Downsample3D(nn.Module):
    """Stride-2 3x3 convolution per frame: halves height and width, keeps the frames."""

    def __init__(self, channels: int, out_channels: int | None = None, padding: int = 1):
        super().__init__()
        if padding != 1:
            raise ValueError(f"downsample_padding={padding} is not supported; the official configs use 1")
        self.channels = channels
        self.conv = InflatedConv3d(channels, out_channels or channels, kernel_size=3, stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample3D(nn.Module):
    """Nearest-neighbour x2 upsampling of height and width (frames untouched), then a 3x3 convolution.

    `output_size` (height, width) forces the result size, which matters when a latent side is not a
    multiple of 8 and the matching skip connection is odd-sized. Nearest upsampling to exactly twice
    the size selects the same pixels as `scale_factor=2`, so the U-Net always passes the skip size.
    """

    def __init__(self, channels: int, out_channels: int | None = None):
        super().__init__()
        self.channels = channels
        self.conv = InflatedConv3d(channels, out_channels or channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, output_size: tuple[int, int] | None = None) -> torch.Tensor:
        frames = fold_frames(x)
        if output_size is None:
            frames = F.interpolate(frames, scale_factor=2.0, mode="nearest")
        else:
            frames = F.interpolate(frames, size=tuple(output_size), mode="nearest")
        return self.conv(unfold_frames(frames, x.shape[2]))


class ResnetBlock3D(nn.Module):
    """Pre-norm residual block: GN -> act -> conv -> + time embedding -> GN -> act -> conv, + shortcut.

    The two GroupNorms see the whole 5-D clip, so their statistics mix all frames of a sample (the
    official `use_inflated_groupnorm=False` behaviour); `inflated_groupnorm=True` normalises per frame.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int,
        groups: int = 32,
        eps: float = 1e-6,
        act_fn: str = "silu",
        output_scale_factor: float = 1.0,
        inflated_groupnorm: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.act = activation(act_fn)
        self.output_scale_factor = output_scale_factor
        self.inflated_groupnorm = inflated_groupnorm
        # Registration order = official state-dict order.
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = InflatedConv3d(in_channels, out_channels, kernel_size=3, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = InflatedConv3d(out_channels, out_channels, kernel_size=3, padding=1)
        self.conv_shortcut = (
            InflatedConv3d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None
        )

    def _norm(self, norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
        if self.inflated_groupnorm:
            return unfold_frames(norm(fold_frames(x)), x.shape[2])
        return norm(x)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        hidden = self.conv1(self.act(self._norm(self.norm1, x)))
        hidden = hidden + self.time_emb_proj(self.act(temb))[:, :, None, None, None]
        hidden = self.dropout(self.act(self._norm(self.norm2, hidden)))
        hidden = self.conv2(hidden)
        shortcut = x if self.conv_shortcut is None else self.conv_shortcut(x)
        out = shortcut + hidden
        if self.output_scale_factor != 1.0:
            out = out / self.output_scale_factor
        return out
