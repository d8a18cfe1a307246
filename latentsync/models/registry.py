"""Which official config does a checkpoint belong to, and may a U-Net checkpoint load into a config?

Each `configs/unet/*.yaml` and `configs/syncnet/*.yaml` model section is built on the `meta` device (no
memory, no init cost) to get its state-dict fingerprint (key -> shape). A checkpoint (a file, a state dict,
or a key -> shape map) is compared with every fingerprint, so inference can pick or verify the config for
a set of weights, and loaders can name the right config when a checkpoint is refused.

Configs whose model sections give identical fingerprints (e.g. `stage2.yaml` and `stage2_512.yaml`) are
interchangeable for the weights; they differ only in data settings such as the resolution.

The U-Net loading policy (`unet_checkpoint.py`) and the matching use the same checks: a config is
"loadable" for a checkpoint exactly when `load_unet` would accept it, and a load refused here names the
config that fits. `load_unet` differs from the official loader on purpose: it reports what was skipped or
missing, and refuses checkpoints that do not fit the config rather than silently running a half-random network.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import LoadReport, diff_state_dicts, read_checkpoint, state_dict_shapes
from ..config import CONFIG_DIR, config_name, load_config, model_config, resolve_config_path
from . import unet_checkpoint
from .unet import UNet3DConditionModel
from .unet_checkpoint import IncompatibleCheckpointError, analyse_unet_checkpoint, load_refusal_reasons

logger = logging.getLogger(__name__)

__all__ = [
    "KINDS",
    "ConfigMatch",
    "known_configs",
    "fingerprint",
    "match_checkpoint",
    "identify_checkpoint",
    "configs_with_model_section",
    "check_config_fits",
    "describe_mismatch",
    "IncompatibleCheckpointError",
    "analyse_unet_checkpoint",
    "load_refusal_reasons",
    "load_unet_checkpoint",
    "load_unet",
]

KINDS = ("unet", "syncnet")
Shapes = dict[str, tuple[int, ...]]


@dataclass
class ConfigMatch:
    """How one group of interchangeable configs relates to a checkpoint.

    status: "exact" (same keys and shapes), "loadable" (a U-Net partial load the loader accepts with a
    report: stage-1 -> stage-2 hand-off or the documented skippable layers) or "different".
    """

    kind: str
    configs: list[str]
    status: str
    differences: int
    detail: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> str:
        return " / ".join(self.configs)


def known_configs(kind: str | None = None) -> list[str]:
    """`configs/<kind>/*.yaml` names of the model configs the registry knows, for one kind or both."""
    kinds = KINDS if kind is None else (kind,)
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"unknown model kind {k!r}; expected one of {KINDS}")
    return [config_name(p) for k in kinds for p in sorted((CONFIG_DIR / k).glob("*.yaml"))]


def _kind_of(config_path: str) -> str:
    return Path(config_path).parent.name


def _build_on_meta(kind: str, section: dict) -> torch.nn.Module:
    with torch.device("meta"):
        if kind == "unet":
            return UNet3DConditionModel.from_config(section)
        from .stable_syncnet import StableSyncNet  # built lazily: the U-Net does not need it

        return StableSyncNet(section)


@functools.lru_cache(maxsize=64)
def _fingerprint_of_section(kind: str, section_json: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    model = _build_on_meta(kind, json.loads(section_json))
    return tuple((key, tuple(value.shape)) for key, value in model.state_dict().items())


def fingerprint(kind: str, section: Mapping) -> Shapes:
    """Ordered key -> shape map of the model a `model:` section builds (cached per section)."""
    return dict(_fingerprint_of_section(kind, json.dumps(section, sort_keys=True)))


@functools.lru_cache(maxsize=64)
def _section_of(config_path: str, mtime: float) -> str:
    return json.dumps(model_config(load_config(config_path)), sort_keys=True)


def _section_json(config_path: str) -> str:
    return _section_of(config_path, resolve_config_path(config_path).stat().st_mtime)


def _groups(kind: str) -> list[tuple[list[str], Mapping, Shapes]]:
    """(config paths, one model section, fingerprint) per distinct fingerprint of this kind."""
    groups: dict[tuple, tuple[list[str], Mapping, Shapes]] = {}
    for path in known_configs(kind):
        section_json = _section_json(path)
        try:
            prints = _fingerprint_of_section(kind, section_json)
        except Exception as err:  # e.g. upstream syncnet_25_pixel.yaml lacks attn_blocks
            logger.debug("config %s does not build a model: %s", path, err)
            continue
        if prints in groups:
            groups[prints][0].append(path)
        else:
            groups[prints] = ([path], json.loads(section_json), dict(prints))
    return list(groups.values())


def _shapes_of(source) -> Shapes:
    if isinstance(source, (str, Path)):
        return state_dict_shapes(read_checkpoint(source).state_dict)
    if isinstance(source, Mapping):
        return {k: tuple(v.shape) if hasattr(v, "shape") else tuple(v) for k, v in source.items()}
    raise TypeError(f"expected a checkpoint path, a state dict or a key->shape map, got {type(source).__name__}")


def _compare(kind: str, section: Mapping, model_shapes: Shapes, ckpt_shapes: Shapes) -> tuple[str, int, str, list]:
    diff = diff_state_dicts(model_shapes, ckpt_shapes)
    differences, detail = diff.count, diff.counts()
    if differences == 0:
        return "exact", 0, "", []
    if kind == "unet":
        report = analyse_unet_checkpoint(section, model_shapes, ckpt_shapes)
        if not load_refusal_reasons(report, ckpt_shapes, allow_partial=True):
            notes = [f"skips {s.key} ({s.reason})" for s in report.skipped]
            if report.missing:
                notes.append(f"{len(report.missing)} motion-module tensors start from init")
            return "loadable", differences, detail, notes
    return "different", differences, detail, []


_STATUS_ORDER = {"exact": 0, "loadable": 1, "different": 2}


def match_checkpoint(source, kind: str | None = None) -> list[ConfigMatch]:
    """Compare a checkpoint with every known config; best matches first.

    `source`: a checkpoint path, a state dict, or a key -> shape map. `kind` limits the search to
    "unet" or "syncnet".
    """
    ckpt_shapes = _shapes_of(source)
    matches = []
    for k in KINDS if kind is None else (kind,):
        for paths, section, model_shapes in _groups(k):
            status, differences, detail, notes = _compare(k, section, model_shapes, ckpt_shapes)
            matches.append(ConfigMatch(k, paths, status, differences, detail, notes))
    matches.sort(key=lambda m: (_STATUS_ORDER[m.status], m.differences))
    return matches


def identify_checkpoint(source, kind: str | None = None) -> list[str]:
    """Config paths whose model has exactly the checkpoint's keys and shapes (empty if none)."""
    return [path for m in match_checkpoint(source, kind) if m.status == "exact" for path in m.configs]


def configs_with_model_section(section: Mapping, kind: str) -> list[str]:
    """Config paths whose `model:` section `section` agrees with (to name the config a caller passed).

    `section` may be a yaml model section or a model's resolved config (which adds defaults): every key
    the yaml file sets must have the same value.
    """
    given = json.loads(json.dumps(dict(section), default=list))
    matches = []
    for path in known_configs(kind):
        expected = json.loads(_section_json(path))
        if all(key in given and given[key] == value for key, value in expected.items()):
            matches.append(path)
    return matches


def check_config_fits(config_path: str | Path, source) -> None:
    """Raise ValueError unless the checkpoint's weights fit the config exactly, naming the configs that do."""
    config_path = config_name(config_path)
    kind = _kind_of(config_path)
    section = json.loads(_section_json(config_path))
    ckpt_shapes = _shapes_of(source)
    if _compare(kind, section, fingerprint(kind, section), ckpt_shapes)[0] == "exact":
        return
    raise ValueError(f"checkpoint does not fit {config_path}. " + describe_mismatch(ckpt_shapes, section, kind))


def describe_mismatch(ckpt_shapes: Mapping, model_config: Mapping | None = None, kind: str = "unet") -> str:
    """One or two sentences naming the config(s) a checkpoint fits, for error messages."""
    matches = match_checkpoint(dict(ckpt_shapes))
    given = ""
    if model_config is not None:
        named = configs_with_model_section(model_config, kind)
        if named:
            given = f"The config given is the model section of {' / '.join(named)}. "
    exact = [m for m in matches if m.status == "exact"]
    if exact:
        best = exact[0]
        what = "a StableSyncNet" if best.kind == "syncnet" else "a U-Net"
        return given + f"The checkpoint is {what} checkpoint for {best.names}: use that config."
    loadable = [m for m in matches if m.status == "loadable" and m.kind == kind]
    if loadable:
        return given + f"The checkpoint can seed {loadable[0].names} ({'; '.join(loadable[0].notes)})."
    if matches:
        best = min(matches, key=lambda m: m.differences)
        return given + (
            f"It matches none of the known configs (configs/unet, configs/syncnet); the closest is {best.names} "
            f"({best.detail})."
        )
    return given


# ---------------------------------------------------------------------------------------------------
# Loading a U-Net checkpoint: the checks are unet_checkpoint.py's; the registry adds the fitting config's name
# ---------------------------------------------------------------------------------------------------


def _config_hint(ckpt_shapes: Mapping, model_config: Mapping) -> str:
    """A sentence naming the config that fits the checkpoint (and the one that was given), if known."""
    try:
        return describe_mismatch(ckpt_shapes, model_config, kind="unet")
    except Exception as err:  # the hint must never hide the real error
        logger.debug("config registry lookup failed: %s", err)
        return ""


def load_unet_checkpoint(unet: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "<state dict>",
                         global_step: int = 0, allow_partial: bool = True) -> LoadReport:
    """`unet_checkpoint.load_unet_checkpoint`, whose refusals also name the config the checkpoint fits."""
    return unet_checkpoint.load_unet_checkpoint(unet, state_dict, source, global_step, allow_partial,
                                                config_hint=_config_hint)


def load_unet(model_config: Mapping, ckpt_path: str | Path, device="cpu", *, allow_partial: bool = True):
    """Build the U-Net from a config's `model:` section and load an official checkpoint.

    Returns `(unet, global_step)` like the official loader; `ckpt_path=""` gives the fresh init and
    step 0. The `LoadReport` is attached as `unet.load_report`. `model_config` is not modified. The checks
    are `unet_checkpoint`'s (as for `UNet3DConditionModel.from_pretrained`); a refusal here also names the
    config the checkpoint fits.
    """
    return unet_checkpoint.load_unet(UNet3DConditionModel, model_config, ckpt_path, device,
                                     allow_partial=allow_partial, config_hint=_config_hint)
