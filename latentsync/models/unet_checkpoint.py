"""Loading a U-Net checkpoint: the official partial-load rules and our refusal policy, for any U-Net class.

One implementation behind `latentsync.models.registry.load_unet` and the official-signature
`UNet3DConditionModel.from_pretrained(model_config, ckpt_path, device)`. This module imports neither of
them (the model class comes as an argument), so the two can share it without an import cycle. The
registry adds a sentence naming the config a refused checkpoint fits (`config_hint`); the checks
themselves are all here.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from latentsync.checkpoint import CheckpointError, LoadReport, SkippedTensor, read_checkpoint, state_dict_shapes

logger = logging.getLogger(__name__)

__all__ = [
    "MOTION_MODULE_KEY",
    "IncompatibleCheckpointError",
    "partial_load_skips",
    "analyse_unet_checkpoint",
    "load_refusal_reasons",
    "load_unet_checkpoint",
    "load_unet",
]

MOTION_MODULE_KEY = ".motion_modules."
# (checkpoint key -> shape, the model's config) -> a sentence naming the config that fits, or "".
ConfigHint = Callable[[Mapping, Mapping], str]


class IncompatibleCheckpointError(CheckpointError):
    """A checkpoint's tensors do not fit the U-Net config it is being loaded into."""


def partial_load_skips(config: Mapping, ckpt_shapes: Mapping, model_shapes: Mapping) -> dict[str, str]:
    """Checkpoint keys the official loader drops so they keep their init: key -> why.

    conv_in/conv_out with other channel counts (e.g. a 4-channel SD-1.5 input layer) and audio
    cross-attention keys/values of another audio width (e.g. Whisper small 768 vs tiny 384).
    """
    skips: dict[str, str] = {}
    conv_in = ckpt_shapes.get("conv_in.weight")
    if conv_in is not None and len(conv_in) > 1 and conv_in[1] != config["in_channels"]:
        for key in ("conv_in.weight", "conv_in.bias"):
            skips[key] = f"conv_in takes {conv_in[1]} channels, config in_channels={config['in_channels']}"
    conv_out = ckpt_shapes.get("conv_out.weight")
    if conv_out is not None and conv_out[0] != config["out_channels"]:
        for key in ("conv_out.weight", "conv_out.bias"):
            skips[key] = f"conv_out gives {conv_out[0]} channels, config out_channels={config['out_channels']}"
    width = config["cross_attention_dim"]
    for key, shape in ckpt_shapes.items():
        if ("attn2.to_k." in key or "attn2.to_v." in key) and len(shape) > 1 and shape[1] != width:
            skips[key] = f"audio width {shape[1]}, config cross_attention_dim={width}"
    return {key: why for key, why in skips.items() if key in ckpt_shapes and key in model_shapes}


def analyse_unet_checkpoint(config: Mapping, model_shapes: Mapping, ckpt_shapes: Mapping) -> LoadReport:
    """Compare a checkpoint's key->shape map with a model's, applying the official skip rules."""
    skips = partial_load_skips(config, ckpt_shapes, model_shapes)
    report = LoadReport(source="")
    report.skipped = [
        SkippedTensor(key, tuple(ckpt_shapes[key]), tuple(model_shapes[key]), why) for key, why in skips.items()
    ]
    for key, shape in ckpt_shapes.items():
        if key in skips:
            continue
        if key not in model_shapes:
            report.unexpected.append(key)
        elif tuple(shape) != tuple(model_shapes[key]):
            report.mismatched.append(SkippedTensor(key, tuple(shape), tuple(model_shapes[key]), "shape differs"))
        else:
            report.loaded += 1
    report.missing = [key for key in model_shapes if key not in ckpt_shapes]
    return report


def load_refusal_reasons(report: LoadReport, ckpt_shapes: Mapping, allow_partial: bool) -> list[str]:
    """Why a checkpoint must not be loaded; empty when it may (possibly as a reported partial load)."""
    reasons = []
    if report.unexpected:
        reasons.append(f"{len(report.unexpected)} tensors the model does not have (e.g. {report.unexpected[:3]})")
    if report.mismatched:
        examples = ", ".join(
            f"{m.key}: checkpoint {list(m.checkpoint_shape)} vs model {list(m.model_shape)}"
            for m in report.mismatched[:3]
        )
        reasons.append(f"{len(report.mismatched)} tensors with other shapes ({examples})")
    motion_missing = [k for k in report.missing if MOTION_MODULE_KEY in k]
    other_missing = [k for k in report.missing if MOTION_MODULE_KEY not in k]
    if other_missing:
        reasons.append(f"{len(other_missing)} non-motion-module tensors missing (e.g. {other_missing[:3]})")
    if motion_missing and any(MOTION_MODULE_KEY in k for k in ckpt_shapes):
        reasons.append(
            f"the checkpoint has motion modules but not at the places this config puts them "
            f"({len(motion_missing)} missing, e.g. {motion_missing[:2]})"
        )
    if not allow_partial and not reasons and (report.skipped or report.missing):
        reasons.append(
            f"a partial load ({len(report.skipped)} skipped, {len(report.missing)} missing tensors) was not allowed"
        )
    return reasons


def load_unet_checkpoint(
    unet: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    source: str = "<state dict>",
    global_step: int = 0,
    allow_partial: bool = True,
    *,
    config_hint: ConfigHint | None = None,
) -> LoadReport:
    """Verify `state_dict` against a `UNet3DConditionModel` and load it; returns (and attaches) a `LoadReport`.

    Refused (IncompatibleCheckpointError, plus `config_hint`'s sentence when given): unexpected tensors, shape
    mismatches other than the documented skippable layers, missing non-motion tensors, motion
    modules at other places. Allowed and reported: the skippable layers, and a checkpoint with no
    motion modules at all (stage 1 / SD) loaded into a model that has them (they start as the
    identity when zero-initialised). `allow_partial=False` refuses those too (use it for inference).
    """
    ckpt_shapes = state_dict_shapes(state_dict)
    model_shapes = state_dict_shapes(unet.state_dict())
    report = analyse_unet_checkpoint(unet.config, model_shapes, ckpt_shapes)
    report.source, report.global_step = source, global_step
    report.checkpoint_dtypes = tuple(sorted({str(v.dtype).replace("torch.", "") for v in state_dict.values()}))
    reasons = load_refusal_reasons(report, ckpt_shapes, allow_partial)
    if reasons:
        hint = config_hint(ckpt_shapes, dict(unet.config)) if config_hint is not None else ""
        raise IncompatibleCheckpointError(
            f"checkpoint {source} does not fit this U-Net config: " + "; ".join(reasons) + (f". {hint}" if hint else "")
        )
    if report.missing and any(MOTION_MODULE_KEY in k for k in report.missing):
        zero_init = (unet.config.motion_module_kwargs or {}).get("zero_initialize", True)
        report.notes.append(
            "motion modules are not in the checkpoint (stage-1 hand-off): they start as the identity"
            if zero_init
            else "motion modules are not in the checkpoint and zero_initialize is false: they start random"
        )
    skipped = {s.key for s in report.skipped}
    result = nn.Module.load_state_dict(unet, {k: v for k, v in state_dict.items() if k not in skipped}, strict=False)
    assert not result.unexpected_keys and set(result.missing_keys) == set(report.missing) | skipped
    (logger.info if report.exact else logger.warning)("U-Net checkpoint: %s", report.summary())
    unet.load_report = report
    return report


def load_unet(model_class: type[nn.Module], model_config: Mapping, ckpt_path: str | Path, device="cpu", *,
              allow_partial: bool = True, config_hint: ConfigHint | None = None):
    """Build `model_class.from_config(model_config)` on `device` and load an official checkpoint into it.

    Returns `(unet, global_step)` like the official loader; `ckpt_path=""` gives the fresh init and
    step 0. The `LoadReport` is attached as `unet.load_report`. `model_config` is not modified.
    """
    config = copy.deepcopy(dict(model_config))
    with torch.device(device):
        unet = model_class.from_config(config)
    if not ckpt_path:
        unet.load_report = LoadReport(source="", notes=["fresh initialisation"])
        return unet, 0
    logger.info("loading U-Net checkpoint %s", ckpt_path)
    checkpoint = read_checkpoint(ckpt_path)
    load_unet_checkpoint(unet, checkpoint.state_dict, str(ckpt_path), checkpoint.global_step, allow_partial,
                         config_hint=config_hint)
    return unet, checkpoint.global_step
