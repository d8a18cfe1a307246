"""Config loading: YAML files under configs/ plus OmegaConf dotlist overrides from the command line."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from latentsync.errors import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"


class ConfigError(InputError):
    """A config file is missing or an override is malformed."""


def resolve_config_path(path: str | Path) -> Path:
    """Find a config given as an absolute path, relative to the cwd, or relative to the repo root."""
    candidate = Path(path)
    for option in (candidate, REPO_ROOT / candidate):
        if option.is_file():
            return option
    raise ConfigError(f"config file not found: {path} (looked in the current folder and in {REPO_ROOT})")


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> DictConfig:
    """Load a YAML config and apply `key=value` overrides such as `data.batch_size=2`."""
    cfg = OmegaConf.load(resolve_config_path(path))
    overrides = list(overrides)
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"overrides must look like key=value (e.g. data.batch_size=2); got: {bad}")
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    return cfg


def model_config(cfg: DictConfig) -> dict:
    """The `model:` section as a plain dict, the form the model constructors and loaders take."""
    return OmegaConf.to_container(cfg.model, resolve=True)
