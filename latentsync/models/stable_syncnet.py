"""StableSyncNet: the audio/visual sync discriminator LatentSync trains and uses as a loss.

Two convolutional `DownEncoder2D` towers (one for a stack of face frames, one for a mel window)
squeeze their input to a (C, 1, 1) feature, which is flattened and L2-normalised. Because each
tower ends in a ReLU, the embeddings are non-negative and their cosine similarity lies in [0, 1];
LatentSync reads that similarity directly as the probability that audio and video are in sync
(see `latentsync.models.sync_loss`).

The module tree mirrors the official one so that official checkpoints (`stable_syncnet.pt`,
`{"state_dict": ..., "global_step": ...}`) load strictly, and the state-dict order is identical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from latentsync.checkpoint import STATE_DICT_KEYS, load_weights
from latentsync.errors import InputError

GROUP_NORM_EPS = 1e-6
ATTENTION_HEADS = 8
FEED_FORWARD_MULT = 4
ENCODER_KEYS = ("in_channels", "block_out_channels", "downsample_factors", "attn_blocks", "dropout")
RELEASED_CHECKPOINT_HINT = (
    "The released one is checkpoints/stable_syncnet.pt from ByteDance/LatentSync-1.5 (see checkpoints/README.md)"
)


class SyncNetConfigError(InputError):
    """The `model:` section of a syncnet config cannot build a StableSyncNet."""


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def _as_stride(factor: int | Sequence[int]) -> int | tuple[int, int]:
    """Config factors are ints or [stride_h, stride_w] lists; Conv2d wants an int or a tuple."""
    if isinstance(factor, Sequence) and not isinstance(factor, str):
        if len(factor) != 2:
            raise SyncNetConfigError(f"a downsample factor must be an int or [stride_h, stride_w], got {factor!r}")
        return int(factor[0]), int(factor[1])
    return int(factor)


def _downsample_padding(stride: int | tuple[int, int]) -> tuple[int, int, int, int]:
    """F.pad amounts (left, right, top, bottom) before the unpadded stride conv.

    Strided axes get one extra column/row at the end only; an axis with stride 1 is padded on both
    sides so its size is kept by the 3x3 kernel. This is the official (asymmetric) convention.
    """
    if isinstance(stride, tuple):
        stride_h, stride_w = stride
        if stride_h == 1:
            return (0, 1, 1, 1)
        if stride_w == 1:
            return (1, 1, 0, 1)
    return (0, 1, 0, 1)


class ResnetBlock2D(nn.Module):
    """Pre-activation residual block, optionally followed by a strided 3x3 downsampling conv."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        downsample_factor: int | Sequence[int] = 2,
        dropout: float = 0.0,
        norm_num_groups: int = 32,
    ):
        super().__init__()
        self.norm1 = nn.GroupNorm(norm_num_groups, in_channels, eps=GROUP_NORM_EPS)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = nn.GroupNorm(norm_num_groups, out_channels, eps=GROUP_NORM_EPS)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.act_fn = nn.SiLU()
        self.conv_shortcut = (
            nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None
        )

        stride = _as_stride(downsample_factor)
        if stride == 1 or stride == (1, 1):
            self.downsample_conv = None
            self.pad = None
        else:
            self.downsample_conv = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=stride, padding=0)
            self.pad = _downsample_padding(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act_fn(self.norm1(x)))
        h = self.conv2(self.dropout(self.act_fn(self.norm2(h))))
        shortcut = x if self.conv_shortcut is None else self.conv_shortcut(x)
        h = h + shortcut
        if self.downsample_conv is not None:
            h = self.downsample_conv(F.pad(h, self.pad))
        return h


class MultiHeadAttention(nn.Module):
    """Self-attention over tokens with biased q/k/v projections (key names as the official `Attention`)."""

    def __init__(self, dim: int, heads: int = ATTENTION_HEADS, dropout: float = 0.0):
        super().__init__()
        if dim % heads != 0:
            raise SyncNetConfigError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=True)
        self.to_k = nn.Linear(dim, dim, bias=True)
        self.to_v = nn.Linear(dim, dim, bias=True)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(dropout)])

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, c = t.shape
        return t.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.to_q(x)), self._split(self.to_k(x)), self._split(self.to_v(x))
        out = F.scaled_dot_product_attention(q, k, v)
        b, _, n, _ = out.shape
        out = out.transpose(1, 2).reshape(b, n, -1)
        return self.to_out[1](self.to_out[0](out))


class GEGLU(nn.Module):
    """Gated GELU projection: first half of the output is the value, second half the gate."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU MLP with the diffusers key layout `net.0.proj`, `net.2`."""

    def __init__(self, dim: int, mult: int = FEED_FORWARD_MULT, dropout: float = 0.0):
        super().__init__()
        inner = dim * mult
        self.net = nn.ModuleList([GEGLU(dim, inner), nn.Dropout(dropout), nn.Linear(inner, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class AttentionBlock2D(nn.Module):
    """Transformer block (self-attention + GEGLU MLP) on the pixels of a feature map, residual overall."""

    def __init__(self, query_dim: int, norm_num_groups: int = 32, dropout: float = 0.0):
        super().__init__()
        # Registration order fixes the state-dict order: norms, ff, convs, attn.
        self.norm1 = nn.GroupNorm(norm_num_groups, query_dim, eps=GROUP_NORM_EPS)
        self.norm2 = nn.LayerNorm(query_dim)
        self.norm3 = nn.LayerNorm(query_dim)
        self.ff = FeedForward(query_dim, dropout=dropout)
        self.conv_in = nn.Conv2d(query_dim, query_dim, kernel_size=1)
        self.conv_out = nn.Conv2d(query_dim, query_dim, kernel_size=1)
        self.attn = MultiHeadAttention(query_dim, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.conv_in(self.norm1(x)).flatten(2).transpose(1, 2)  # (b, h*w, c)
        tokens = tokens + self.attn(self.norm2(tokens))
        tokens = tokens + self.ff(self.norm3(tokens))
        y = tokens.transpose(1, 2).reshape(b, c, h, w).contiguous()
        return self.conv_out(y) + x


class DownEncoder2D(nn.Module):
    """conv_in, then one resnet per level (each optionally followed by an attention block), then GN+ReLU.

    Resnets and attention blocks share one flat `down_blocks` list, so indices shift after each
    attention block exactly as in official checkpoints.
    """

    def __init__(
        self,
        in_channels: int,
        block_out_channels: Sequence[int],
        downsample_factors: Sequence[int | Sequence[int]],
        attn_blocks: Sequence[int],
        dropout: float = 0.0,
        norm_num_groups: int = 32,
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        self.gradient_checkpointing = gradient_checkpointing
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.down_blocks = nn.ModuleList()
        channels = block_out_channels[0]
        for out_channels, factor, with_attention in zip(
            block_out_channels, downsample_factors, attn_blocks, strict=True
        ):
            self.down_blocks.append(
                ResnetBlock2D(channels, out_channels, factor, dropout=dropout, norm_num_groups=norm_num_groups)
            )
            if int(with_attention) == 1:
                self.down_blocks.append(AttentionBlock2D(out_channels, dropout=dropout))
            channels = out_channels
        self.norm_out = nn.GroupNorm(norm_num_groups, block_out_channels[-1], eps=GROUP_NORM_EPS)
        self.act_fn_out = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        use_checkpointing = self.gradient_checkpointing and torch.is_grad_enabled()
        for block in self.down_blocks:
            x = checkpoint(block, x, use_reentrant=False) if use_checkpointing else block(x)
        return self.act_fn_out(self.norm_out(x))


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


def _encoder_kwargs(config: Mapping, name: str) -> dict:
    """Validate one encoder section of the `model:` config and turn it into DownEncoder2D kwargs."""
    section = config.get(name) if isinstance(config, Mapping) else None
    if not isinstance(section, Mapping):
        raise SyncNetConfigError(
            f"syncnet config has no '{name}' section; pass the `model:` section of a configs/syncnet/*.yaml "
            "file as a dict (latentsync.config.model_config(cfg))"
        )
    missing = [key for key in ENCODER_KEYS if key not in section]
    if missing:
        hint = ""
        if "attn_blocks" in missing:
            hint = " (upstream syncnet_25_pixel.yaml omits attn_blocks; use a list of zeros, one per block)"
        raise SyncNetConfigError(f"syncnet config '{name}' lacks {missing}{hint}")
    levels = len(section["block_out_channels"])
    for key in ("downsample_factors", "attn_blocks"):
        if len(section[key]) != levels:
            raise SyncNetConfigError(
                f"syncnet config '{name}.{key}' has {len(section[key])} entries but block_out_channels has "
                f"{levels}; give one entry per level"
            )
    return {
        "in_channels": int(section["in_channels"]),
        "block_out_channels": [int(c) for c in section["block_out_channels"]],
        "downsample_factors": [
            [int(s) for s in f] if isinstance(f, Sequence) and not isinstance(f, str) else int(f)
            for f in section["downsample_factors"]
        ],
        "attn_blocks": [int(a) for a in section["attn_blocks"]],
        "dropout": float(section["dropout"]),
    }


class StableSyncNet(nn.Module):
    """Audio/visual embedding pair for lip-sync supervision.

    `config` is the `model:` section of a configs/syncnet/*.yaml as a plain dict. The model is put
    in eval mode on construction, like the official one, since it is mostly used frozen.
    """

    def __init__(self, config: Mapping, gradient_checkpointing: bool = False):
        super().__init__()
        self.config = {name: _encoder_kwargs(config, name) for name in ("audio_encoder", "visual_encoder")}
        self.audio_encoder = DownEncoder2D(
            **self.config["audio_encoder"], gradient_checkpointing=gradient_checkpointing
        )
        self.visual_encoder = DownEncoder2D(
            **self.config["visual_encoder"], gradient_checkpointing=gradient_checkpointing
        )
        self.eval()

    @property
    def gradient_checkpointing(self) -> bool:
        return self.audio_encoder.gradient_checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, enabled: bool) -> None:
        self.audio_encoder.gradient_checkpointing = enabled
        self.visual_encoder.gradient_checkpointing = enabled

    def encode(self, image_sequences: torch.Tensor, audio_sequences: torch.Tensor):
        """Raw encoder outputs, (b, c, h', w') each, before flattening and normalisation."""
        return self.visual_encoder(image_sequences), self.audio_encoder(audio_sequences)

    def forward(self, image_sequences: torch.Tensor, audio_sequences: torch.Tensor):
        """(b, frames*channels, h, w) faces and (b, 1, 80, t) mel -> unit (vision_embeds, audio_embeds)."""
        vision_raw, audio_raw = self.encode(image_sequences, audio_sequences)
        vision_embeds = F.normalize(vision_raw.reshape(vision_raw.shape[0], -1), p=2, dim=1)
        audio_embeds = F.normalize(audio_raw.reshape(audio_raw.shape[0], -1), p=2, dim=1)
        if vision_embeds.shape[1] != audio_embeds.shape[1]:
            raise ValueError(
                f"syncnet embeddings differ in size: vision {tuple(vision_raw.shape[1:])} from images "
                f"{tuple(image_sequences.shape)}, audio {tuple(audio_raw.shape[1:])} from mel "
                f"{tuple(audio_sequences.shape)}; the input sizes do not match what the config downsamples to 1x1"
            )
        return vision_embeds, audio_embeds

    # ---- checkpoints -------------------------------------------------------------------------

    def load_checkpoint(self, path: str | Path, map_location: str | torch.device = "cpu") -> dict:
        """Load weights strictly; returns the checkpoint's other entries (global_step, loss lists...).

        Official `{"state_dict", "global_step", ...}` files, bare state dicts and .safetensors are accepted.
        """
        checkpoint = load_weights(
            self, path, "syncnet", hint=RELEASED_CHECKPOINT_HINT, containers=STATE_DICT_KEYS,
            advice="Use the config the checkpoint was trained with (configs/syncnet/syncnet_16_pixel_attn.yaml "
            "for the released stable_syncnet.pt)", map_location=map_location,
        )
        return checkpoint.extras

    @classmethod
    def from_pretrained(
        cls,
        config: Mapping,
        ckpt_path: str | Path,
        device: str | torch.device = "cpu",
        gradient_checkpointing: bool = False,
    ) -> StableSyncNet:
        """Build from a `model:` config and load a checkpoint (official `{"state_dict"}` .pt or safetensors)."""
        model = cls(config, gradient_checkpointing=gradient_checkpointing)
        model.load_checkpoint(ckpt_path)
        return model.to(device)
