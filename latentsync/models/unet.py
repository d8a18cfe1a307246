"""The audio-conditioned 3-D U-Net of LatentSync, checkpoint-compatible with the official one.

`UNet3DConditionModel` is built from the `model:` section of `configs/unet/*.yaml` and has the official
state-dict keys, shapes and order, so official checkpoints (`{"state_dict": ..., "global_step": int}`)
load unchanged. It denoises a clip of latents `(b, 13, f, h, w)` (noisy 4 + mask 1 + masked 4 +
reference 4 channels) conditioned on the timestep and on Whisper audio tokens, one group per frame.

`load_state_dict` keeps the official partial-load rules (`partial_load_skips`). Verified loading, which
reports what was skipped or missing and refuses checkpoints that do not fit the config, is
`latentsync.models.unet_checkpoint`, behind both the official `UNet3DConditionModel.from_pretrained(model_config,
ckpt_path, device)` and `latentsync.models.registry.load_unet` (whose refusals also name the config that fits:
the registry imports this module, so this module does not import it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from latentsync.checkpoint import state_dict_shapes

from .resnet import InflatedConv3d
from .unet_blocks import LayerSettings, LayerStack, UNetMidBlock3DCrossAttn, get_down_block, get_up_block
from .unet_checkpoint import load_unet, partial_load_skips

logger = logging.getLogger(__name__)

__all__ = [
    "UNet3DConditionModel",
    "UNet3DConditionOutput",
    "partial_load_skips",
]

# Audio token widths of the Whisper encoders LatentSync uses, for error messages.
WHISPER_WIDTHS = {384: "Whisper tiny", 768: "Whisper small"}


@dataclass
class UNet3DConditionOutput(BaseOutput):
    """`sample`: the predicted noise, (b, out_channels, f, h, w)."""

    sample: torch.Tensor


# ---------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------


def _per_block(value, count: int, name: str) -> list:
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != count:
            raise ValueError(f"{name} has {len(value)} entries but there are {count} down blocks")
        return list(value)
    return [value] * count


def _check_supported_options(class_embed_type, num_class_embeds, dual_cross_attention, use_linear_projection,
                             only_cross_attention, resnet_time_scale_shift, mid_block_type, down_block_types,
                             up_block_types, block_out_channels) -> None:
    """Refuse the diffusers U-Net options LatentSync's configs never set (this model does not implement them)."""
    unsupported = {
        "class_embed_type": class_embed_type is not None,
        "num_class_embeds": num_class_embeds is not None,
        "dual_cross_attention": bool(dual_cross_attention),
        "use_linear_projection": bool(use_linear_projection),
        "only_cross_attention": any(_per_block(only_cross_attention, len(down_block_types), "only_cross_attention")),
        "resnet_time_scale_shift": resnet_time_scale_shift != "default",
    }
    if any(unsupported.values()):
        raise ValueError(
            f"unsupported U-Net options {[k for k, v in unsupported.items() if v]}: LatentSync configs use "
            "class_embed_type/num_class_embeds null, dual_cross_attention/use_linear_projection/"
            "only_cross_attention false and resnet_time_scale_shift 'default'"
        )
    if mid_block_type != "UNetMidBlock3DCrossAttn":
        raise ValueError(f"unknown mid_block_type {mid_block_type!r}; expected 'UNetMidBlock3DCrossAttn'")
    if not (len(down_block_types) == len(up_block_types) == len(block_out_channels)):
        raise ValueError("down_block_types, up_block_types and block_out_channels must have the same length")


class UNet3DConditionModel(ModelMixin, ConfigMixin):
    """LatentSync's 3-D U-Net (official architecture, state dict and config keys).

    Activations live in frame-major memory, channels-last where that is faster (see
    `latentsync.models.resnet`); inputs and outputs are ordinary contiguous `(b, c, f, h, w)` tensors.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = None,
        in_channels: int = 4,
        out_channels: int = 4,
        center_input_sample: bool = False,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        down_block_types: Sequence[str] = (
            "CrossAttnDownBlock3D",
            "CrossAttnDownBlock3D",
            "CrossAttnDownBlock3D",
            "DownBlock3D",
        ),
        mid_block_type: str = "UNetMidBlock3DCrossAttn",
        up_block_types: Sequence[str] = ("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
        only_cross_attention: bool | Sequence[bool] = False,
        block_out_channels: Sequence[int] = (320, 640, 1280, 1280),
        layers_per_block: int = 2,
        downsample_padding: int = 1,
        mid_block_scale_factor: float = 1,
        act_fn: str = "silu",
        norm_num_groups: int = 32,
        norm_eps: float = 1e-5,
        cross_attention_dim: int = 1280,
        attention_head_dim: int | Sequence[int] = 8,
        dual_cross_attention: bool = False,
        use_linear_projection: bool = False,
        class_embed_type: str | None = None,
        num_class_embeds: int | None = None,
        upcast_attention: bool = False,
        resnet_time_scale_shift: str = "default",
        use_inflated_groupnorm: bool = False,
        use_motion_module: bool = False,
        motion_module_resolutions: Sequence[int] = (1, 2, 4, 8),
        motion_module_mid_block: bool = False,
        motion_module_decoder_only: bool = False,
        motion_module_type: str | None = None,
        motion_module_kwargs: dict | None = None,
        add_audio_layer: bool = False,
    ):
        super().__init__()
        _check_supported_options(class_embed_type, num_class_embeds, dual_cross_attention, use_linear_projection,
                                 only_cross_attention, resnet_time_scale_shift, mid_block_type, down_block_types,
                                 up_block_types, block_out_channels)

        # Attributes the official model exposes and pipelines read.
        self.sample_size, self.use_motion_module, self.add_audio_layer = sample_size, use_motion_module, add_audio_layer

        heads = _per_block(attention_head_dim, len(block_out_channels), "attention_head_dim")  # a head COUNT per level
        settings = LayerSettings(
            temb_channels=block_out_channels[0] * 4, resnet_eps=norm_eps, resnet_act_fn=act_fn,
            resnet_groups=norm_num_groups, use_inflated_groupnorm=use_inflated_groupnorm,
            motion_module_type=motion_module_type, motion_module_kwargs=dict(motion_module_kwargs or {}),
            cross_attention_dim=cross_attention_dim, add_audio_layer=add_audio_layer,
        )
        self.max_frames = settings.motion_module_kwargs.get("temporal_position_encoding_max_len", 24)
        def wants_motion(resolution: float) -> bool:
            return bool(use_motion_module) and resolution in motion_module_resolutions

        # The official resolution index: 2**i going down, and counting down from 8 for every config going up.
        down_motion = [wants_motion(2**i) and not motion_module_decoder_only for i in range(len(down_block_types))]
        up_motion = [wants_motion(2 ** (3 - i)) for i in range(len(up_block_types))]

        # Registration order = official state-dict order: conv_in, time_proj, time_embedding,
        # down_blocks, up_blocks, mid_block, out layers. up_blocks is registered (empty) before mid_block
        # is built, exactly like the official code, so mid_block's keys come after the up blocks'.
        self._build_input_layers(in_channels, block_out_channels[0], flip_sin_to_cos, freq_shift)
        self.down_blocks = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        self._build_down_blocks(down_block_types, block_out_channels, heads, settings, layers_per_block,
                                downsample_padding, down_motion)
        self.mid_block = UNetMidBlock3DCrossAttn(
            in_channels=block_out_channels[-1],
            settings=replace(settings, output_scale_factor=mid_block_scale_factor),
            stack=LayerStack(1, heads[-1], bool(use_motion_module) and motion_module_mid_block),
        )
        self._build_up_blocks(up_block_types, block_out_channels, heads, settings, layers_per_block, up_motion)
        self._build_output_layers(block_out_channels[0], out_channels, norm_num_groups, norm_eps)
        self.channels_last = True

    def _build_input_layers(self, in_channels: int, width: int, flip_sin_to_cos: bool, freq_shift: int) -> None:
        """conv_in (zero-initialised, as the official) and the timestep embedding (4 x the first width)."""
        self.conv_in = InflatedConv3d(in_channels, width, kernel_size=3, padding=1)
        self.time_proj = Timesteps(width, flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(width, width * 4)

    def _build_down_blocks(self, block_types, channels, heads, settings, layers_per_block: int,
                           downsample_padding: int, motion: list[bool]) -> None:
        """Encoder levels in width order; all but the last downsample."""
        for i, block_type in enumerate(block_types):
            self.down_blocks.append(
                get_down_block(
                    block_type,
                    in_channels=channels[max(i - 1, 0)],
                    out_channels=channels[i],
                    settings=settings,
                    stack=LayerStack(layers_per_block, heads[i], motion[i]),
                    add_downsample=i < len(channels) - 1,
                    downsample_padding=downsample_padding,
                )
            )

    def _build_up_blocks(self, block_types, channels, heads, settings, layers_per_block: int,
                         motion: list[bool]) -> None:
        """Decoder levels in reverse width order, one more layer each (they take the skip connections)."""
        reversed_channels = list(reversed(channels))
        reversed_heads = list(reversed(heads))
        last = len(channels) - 1
        for i, block_type in enumerate(block_types):
            self.up_blocks.append(
                get_up_block(
                    block_type,
                    in_channels=reversed_channels[min(i + 1, last)],
                    prev_output_channel=reversed_channels[max(i - 1, 0)],
                    out_channels=reversed_channels[i],
                    settings=settings,
                    stack=LayerStack(layers_per_block + 1, reversed_heads[i], motion[i]),
                    add_upsample=i < last,
                )
            )

    def _build_output_layers(self, width: int, out_channels: int, groups: int, eps: float) -> None:
        """GroupNorm, SiLU and conv_out; then the official zero init of conv_in and conv_out."""
        self.conv_norm_out = nn.GroupNorm(groups, width, eps=eps)
        self.conv_act = nn.SiLU()
        self.conv_out = InflatedConv3d(width, out_channels, kernel_size=3, padding=1)
        for layer in (self.conv_in, self.conv_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def set_channels_last(self, enabled: bool) -> None:
        """Run activations in frame-major channels-last memory (default) or plain contiguous memory.

        Results agree to float rounding; channels-last is faster (docs/benchmarks.md).
        """
        self.channels_last = enabled
        for module in self.modules():
            if isinstance(module, InflatedConv3d):
                module.prefer_channels_last = enabled

    @classmethod
    def from_pretrained(cls, model_config: Mapping | str, ckpt_path: str | None = None, device="cpu", **kwargs):
        """The official loader's signature: `(unet, global_step)` from a config's `model:` section and a checkpoint.

        The same checks as `latentsync.models.registry.load_unet` (a partial load is allowed and reported in
        `unet.load_report`; a checkpoint that does not fit raises `IncompatibleCheckpointError`; `ckpt_path=""`
        gives the fresh init and step 0); use `load_unet` for refusals that also name the config that fits.
        A diffusers-style call (a folder or file as the first argument) is refused: it would skip the checks.
        """
        if not isinstance(model_config, Mapping) or ckpt_path is None or kwargs:
            raise TypeError(
                "UNet3DConditionModel.from_pretrained takes the official (model_config, ckpt_path, device) "
                "arguments, not diffusers' (pretrained_model_name_or_path, ...): use "
                "UNet3DConditionModel.from_pretrained(model_config, checkpoint_path) or "
                "latentsync.models.registry.load_unet(model_config, checkpoint_path), which also names the config "
                "that fits when they disagree"
            )
        return load_unet(cls, model_config, ckpt_path, device)

    def to(self, *args, **kwargs):
        # Plain nn.Module.to: diffusers 0.42's override warns about fp32-kept modules on every dtype
        # cast even when there are none, and adds nothing this model uses.
        return nn.Module.to(self, *args, **kwargs)

    # ------------------------------------------------------------------------------------------ forward

    def _check_inputs(self, sample: torch.Tensor, encoder_hidden_states: torch.Tensor | None) -> None:
        cfg = self.config
        if sample.ndim != 5:
            raise ValueError(
                f"sample must be (batch, channels, frames, height, width), got shape {tuple(sample.shape)}"
            )
        if sample.shape[1] != cfg.in_channels:
            raise ValueError(
                f"sample has {sample.shape[1]} channels but this U-Net takes in_channels={cfg.in_channels} "
                "(LatentSync: noisy latents 4 + mask 1 + masked latents 4 + reference latents 4 = 13)"
            )
        num_frames = sample.shape[2]
        if cfg.use_motion_module and num_frames > self.max_frames:
            raise ValueError(
                f"clip has {num_frames} frames but the motion modules' position encoding covers at most "
                f"{self.max_frames}; run the clip in chunks of <= {self.max_frames} frames"
            )
        if encoder_hidden_states is None or not cfg.add_audio_layer:
            return
        batch = sample.shape[0]
        ehs = encoder_hidden_states
        ok_layout = (ehs.ndim == 3 and ehs.shape[0] == batch * num_frames) or (
            ehs.ndim == 4 and tuple(ehs.shape[:2]) == (batch, num_frames)
        )
        if not ok_layout:
            raise ValueError(
                f"encoder_hidden_states has shape {tuple(ehs.shape)}; for a sample of {batch} clip(s) x "
                f"{num_frames} frames it must be ({batch * num_frames}, tokens, dim) with row b*frames+f for "
                f"clip b, frame f, or ({batch}, {num_frames}, tokens, dim)"
            )
        if ehs.shape[-1] != cfg.cross_attention_dim:
            raise ValueError(
                f"audio features are {ehs.shape[-1]} wide but this U-Net's cross_attention_dim is "
                f"{cfg.cross_attention_dim} ({WHISPER_WIDTHS.get(cfg.cross_attention_dim, 'another encoder')}); "
                f"use the matching Whisper model ({WHISPER_WIDTHS.get(ehs.shape[-1], 'unknown width')} gives "
                f"{ehs.shape[-1]}) or the matching U-Net config"
            )

    def _time_embedding(self, timestep, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Official timestep semantics: int -> int64, float -> float64, 0-dim -> [t], broadcast to batch."""
        if not torch.is_tensor(timestep):
            is_mps = device.type == "mps"
            if isinstance(timestep, float):
                ts_dtype = torch.float32 if is_mps else torch.float64
            else:
                ts_dtype = torch.int32 if is_mps else torch.int64
            timesteps = torch.tensor([timestep], dtype=ts_dtype, device=device)
        else:
            timesteps = timestep.to(device).reshape(-1)
        timesteps = timesteps.expand(batch)
        return self.time_embedding(self.time_proj(timesteps).to(dtype))

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor | None = None,
        class_labels: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        down_block_additional_residuals: Sequence[torch.Tensor] | None = None,
        mid_block_additional_residual: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> UNet3DConditionOutput | tuple[torch.Tensor]:
        """Predict the noise of `sample` (b, c, f, h, w) at `timestep` given per-frame audio tokens.

        `encoder_hidden_states`: (b*f, n, d) with row b*f_count+f for clip b / frame f (the pipeline's
        layout), or (b, f, n, d) (the training layout); None skips every audio cross-attention.
        `timestep`: a number, a 0-dim tensor or one value per clip. Inputs are cast to the model dtype.
        `class_labels` and `attention_mask` exist for signature compatibility; the official model has no
        class embedding and ignores attention masks, so only None is accepted.
        """
        if class_labels is not None or attention_mask is not None:
            raise ValueError(
                "class_labels and attention_mask are not supported (the official LatentSync U-Net has no class "
                "embedding and ignores attention masks); pass None"
            )
        self._check_inputs(sample, encoder_hidden_states)
        dtype = self.conv_in.weight.dtype
        batch, _, num_frames = sample.shape[:3]

        audio = None
        if encoder_hidden_states is not None and self.config.add_audio_layer:
            audio = encoder_hidden_states.reshape(batch * num_frames, *encoder_hidden_states.shape[-2:]).to(dtype)
        emb = self._time_embedding(timestep, batch, sample.device, dtype)

        x = sample.to(dtype)
        if self.config.center_input_sample:
            x = 2 * x - 1.0
        x = self.conv_in(x)

        skips = [x]
        for block in self.down_blocks:
            x, block_skips = block(x, emb, audio)
            skips.extend(block_skips)
        if down_block_additional_residuals is not None:  # ControlNet-style residuals, as in the official model
            skips = [
                s + (r.unsqueeze(2) if r.ndim == 4 else r)
                for s, r in zip(skips, down_block_additional_residuals, strict=False)
            ]

        x = self.mid_block(x, emb, audio)
        if mid_block_additional_residual is not None:
            r = mid_block_additional_residual
            x = x + (r.unsqueeze(2) if r.ndim == 4 else r)

        for block in self.up_blocks:
            count = len(block.resnets)
            level_skips, skips = skips[-count:], skips[:-count]
            # Always pass the target size: identical to x2 when even, and right for odd-sized latents.
            upsample_size = tuple(skips[-1].shape[-2:]) if block.upsamplers is not None else None
            x = block(x, level_skips, emb, audio, upsample_size)

        x = self.conv_out(self.conv_act(self.conv_norm_out(x)))
        x = x.contiguous()
        if not return_dict:
            return (x,)
        return UNet3DConditionOutput(sample=x)

    # ------------------------------------------------------------------------------------------ loading

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor], strict: bool = True, assign: bool = False):
        """`nn.Module.load_state_dict` with the official partial-load rules, without touching `state_dict`.

        conv_in/conv_out with other channel counts and `attn2.to_k/to_v` of another audio width are left
        out (they keep their init and are logged); with `strict=True` they then count as missing, as in
        the official model. For verified loading with a report, use `registry.load_unet`/`load_unet_checkpoint`.
        """
        model_shapes = {k: tuple(v.shape) for k, v in self.state_dict().items()}
        skips = partial_load_skips(self.config, state_dict_shapes(state_dict), model_shapes)
        for key, why in skips.items():
            logger.warning("not loading %s (%s); it keeps its initialisation", key, why)
        kept = {k: v for k, v in state_dict.items() if k not in skips}
        return super().load_state_dict(kept, strict=strict, assign=assign)
