"""Down, mid and up blocks of the 3-D U-Net: ResNet -> [spatial transformer] -> [motion module] per layer.

Every block builds its layers through one `LayerSettings` (the options all blocks of a U-Net share) and its
own `LayerStack` (how many layers, attention heads, motion modules). The cross-attention and plain variants
share one implementation; the cross-attention one registers its `attentions` first, which is the official
state-dict order (`attentions, resnets, motion_modules, down/upsamplers`). Absent motion modules are `None`
entries, as in the official `ModuleList`s.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.utils.checkpoint
from torch import nn

from .attention import Transformer3DModel
from .motion_module import get_motion_module
from .resnet import Downsample3D, ResnetBlock3D, Upsample3D

__all__ = [
    "LayerSettings",
    "LayerStack",
    "DownBlock3D",
    "CrossAttnDownBlock3D",
    "UpBlock3D",
    "CrossAttnUpBlock3D",
    "UNetMidBlock3DCrossAttn",
    "get_down_block",
    "get_up_block",
]


def _default_checkpoint(module: nn.Module, *args):
    """Non-reentrant activation checkpointing (diffusers installs its own equivalent when enabled)."""
    return torch.utils.checkpoint.checkpoint(module.__call__, *args, use_reentrant=False)


@dataclass(frozen=True)
class LayerSettings:
    """The per-layer options every block of one U-Net shares, so each block only states its own shape."""

    temb_channels: int
    resnet_eps: float = 1e-6
    resnet_act_fn: str = "silu"
    resnet_groups: int = 32
    output_scale_factor: float = 1.0
    use_inflated_groupnorm: bool = False
    motion_module_type: str | None = None
    motion_module_kwargs: dict | None = None
    cross_attention_dim: int | None = None
    add_audio_layer: bool = False

    def resnet(self, in_channels: int, out_channels: int) -> ResnetBlock3D:
        return ResnetBlock3D(
            in_channels,
            out_channels,
            self.temb_channels,
            groups=self.resnet_groups,
            eps=self.resnet_eps,
            act_fn=self.resnet_act_fn,
            output_scale_factor=self.output_scale_factor,
            inflated_groupnorm=self.use_inflated_groupnorm,
        )

    def transformer(self, channels: int, heads: int) -> Transformer3DModel:
        return Transformer3DModel(
            heads,
            channels // heads,
            in_channels=channels,
            norm_num_groups=self.resnet_groups,
            cross_attention_dim=self.cross_attention_dim,
            add_audio_layer=self.add_audio_layer,
        )

    def motion_module(self, channels: int, enabled: bool) -> nn.Module | None:
        return get_motion_module(channels, self.motion_module_type, self.motion_module_kwargs) if enabled else None


@dataclass(frozen=True)
class LayerStack:
    """What one block stacks: `num_layers` layers, `heads` attention heads per spatial transformer (in the
    cross-attention blocks), and a motion module after each layer when `use_motion_module`."""

    num_layers: int = 1
    heads: int = 8
    use_motion_module: bool = False


class _CheckpointableBlock(nn.Module):
    """Runs sub-layers through activation checkpointing when `gradient_checkpointing` is on and grads are."""

    def __init__(self):
        super().__init__()
        self.gradient_checkpointing = False
        self._gradient_checkpointing_func = _default_checkpoint

    def _call(self, module: nn.Module, *args):
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return self._gradient_checkpointing_func(module, *args)
        return module(*args)

    def _add_layers(self, settings: LayerSettings, stack: LayerStack, channels: int, resnet_inputs: list[int]) -> None:
        """Register `attentions` (cross-attention blocks only), `resnets`, `motion_modules`: the official order."""
        if self.has_cross_attention:
            heads = stack.heads
            self.attentions = nn.ModuleList(settings.transformer(channels, heads) for _ in range(stack.num_layers))
        self.resnets = nn.ModuleList(settings.resnet(n, channels) for n in resnet_inputs)
        self.motion_modules = nn.ModuleList(
            settings.motion_module(channels, stack.use_motion_module) for _ in range(stack.num_layers)
        )

    def _layer(self, resnet, attention, motion_module, x, temb, audio):
        x = self._call(resnet, x, temb)
        if attention is not None:
            x = self._call(attention, x, audio)
        if motion_module is not None:
            x = self._call(motion_module, x)
        return x


class DownBlock3D(_CheckpointableBlock):
    """Encoder level: `stack.num_layers` x (resnet [, attention] [, motion]) then an optional stride-2 conv.

    Returns the hidden state and every intermediate output (the skip connections for the decoder).
    """

    has_cross_attention = False

    def __init__(self, in_channels: int, out_channels: int, settings: LayerSettings, stack: LayerStack = LayerStack(),
                 add_downsample: bool = True, downsample_padding: int = 1):
        super().__init__()
        resnet_inputs = [in_channels] + [out_channels] * (stack.num_layers - 1)
        self._add_layers(settings, stack, out_channels, resnet_inputs)
        self.downsamplers = (
            nn.ModuleList([Downsample3D(out_channels, padding=downsample_padding)]) if add_downsample else None
        )

    def forward(self, x: torch.Tensor, temb: torch.Tensor, audio: torch.Tensor | None = None):
        attentions = self.attentions if self.has_cross_attention else [None] * len(self.resnets)
        skips = []
        for resnet, attention, motion_module in zip(self.resnets, attentions, self.motion_modules, strict=True):
            x = self._layer(resnet, attention, motion_module, x, temb, audio)
            skips.append(x)
        if self.downsamplers is not None:
            for downsampler in self.downsamplers:
                x = downsampler(x)
            skips.append(x)
        return x, tuple(skips)


class CrossAttnDownBlock3D(DownBlock3D):
    """`DownBlock3D` with a spatial transformer (self + audio cross-attention) after each resnet."""

    has_cross_attention = True


class UpBlock3D(_CheckpointableBlock):
    """Decoder level: per layer, concatenate a skip connection on channels, then resnet [, attn] [, motion];
    finally an optional nearest x2 upsampler.
    """

    has_cross_attention = False

    def __init__(self, in_channels: int, prev_output_channel: int, out_channels: int, settings: LayerSettings,
                 stack: LayerStack = LayerStack(), add_upsample: bool = True):
        super().__init__()
        # Layer i sees the previous layer's output plus one encoder skip; the last skip is the level input.
        skip_channels = [out_channels] * (stack.num_layers - 1) + [in_channels]
        previous = [prev_output_channel] + [out_channels] * (stack.num_layers - 1)
        resnet_inputs = [p + s for p, s in zip(previous, skip_channels, strict=True)]
        self._add_layers(settings, stack, out_channels, resnet_inputs)
        self.upsamplers = nn.ModuleList([Upsample3D(out_channels)]) if add_upsample else None

    def forward(
        self,
        x: torch.Tensor,
        skips: tuple[torch.Tensor, ...],
        temb: torch.Tensor,
        audio: torch.Tensor | None = None,
        upsample_size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """`skips` are this level's encoder outputs in encoder order; they are consumed last-first."""
        attentions = self.attentions if self.has_cross_attention else [None] * len(self.resnets)
        for i, (resnet, attention, motion_module) in enumerate(
            zip(self.resnets, attentions, self.motion_modules, strict=True)
        ):
            x = torch.cat([x, skips[-1 - i]], dim=1)
            x = self._layer(resnet, attention, motion_module, x, temb, audio)
        if self.upsamplers is not None:
            for upsampler in self.upsamplers:
                x = upsampler(x, upsample_size)
        return x


class CrossAttnUpBlock3D(UpBlock3D):
    """`UpBlock3D` with a spatial transformer (self + audio cross-attention) after each resnet."""

    has_cross_attention = True


class UNetMidBlock3DCrossAttn(_CheckpointableBlock):
    """Bottleneck: resnet, then `stack.num_layers` x (attention [, motion module], resnet)."""

    has_cross_attention = True

    def __init__(self, in_channels: int, settings: LayerSettings, stack: LayerStack = LayerStack()):
        super().__init__()
        resnet_inputs = [in_channels] * (stack.num_layers + 1)
        self._add_layers(settings, stack, in_channels, resnet_inputs)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, audio: torch.Tensor | None = None) -> torch.Tensor:
        x = self._call(self.resnets[0], x, temb)
        for attention, motion_module, resnet in zip(
            self.attentions, self.motion_modules, self.resnets[1:], strict=True
        ):
            x = self._call(attention, x, audio)
            if motion_module is not None:
                x = self._call(motion_module, x)
            x = self._call(resnet, x, temb)
        return x


_DOWN_BLOCKS = {"DownBlock3D": DownBlock3D, "CrossAttnDownBlock3D": CrossAttnDownBlock3D}
_UP_BLOCKS = {"UpBlock3D": UpBlock3D, "CrossAttnUpBlock3D": CrossAttnUpBlock3D}


def _block_class(kind: str, table: dict, what: str):
    name = kind[len("UNetRes") :] if kind.startswith("UNetRes") else kind
    if name not in table:
        raise ValueError(f"unknown {what} {kind!r}; expected one of {sorted(table)}")
    return table[name]


def get_down_block(down_block_type: str, **kwargs) -> DownBlock3D:
    """Build a down block from its config name (`down_block_types` entry)."""
    return _block_class(down_block_type, _DOWN_BLOCKS, "down block type")(**kwargs)


def get_up_block(up_block_type: str, **kwargs) -> UpBlock3D:
    """Build an up block from its config name (`up_block_types` entry)."""
    return _block_class(up_block_type, _UP_BLOCKS, "up block type")(**kwargs)
