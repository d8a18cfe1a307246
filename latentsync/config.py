"""Config loading: YAML files under configs/ plus OmegaConf dotlist overrides from the command line.

The configs live inside the package (`latentsync/configs/`, shipped as package data) so an installed copy
finds them; in a checkout the repo-root `configs` is a symlink to that folder, so the official
`configs/unet/stage2.yaml`-style paths work from the repository root and in installed mode alike.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from latentsync.errors import InputError

PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_DIR = PACKAGE_DIR / "configs"
# The checkout's root (the folder holding checkpoints/ and the `configs` symlink); when installed this is
# site-packages, where relative paths simply do not resolve and the cwd decides.
REPO_ROOT = PACKAGE_DIR.parent


class ConfigError(InputError):
    """A config file is missing or an override is malformed."""


def _in_package(candidate: Path) -> Path | None:
    """`configs/x/y.yaml` as the package's own copy, so repo-style paths work in an installed copy too."""
    parts = candidate.parts
    if candidate.is_absolute() or len(parts) < 2 or parts[0] != "configs":
        return None
    return CONFIG_DIR.joinpath(*parts[1:])


def resolve_config_path(path: str | Path) -> Path:
    """Find a config given as an absolute path, relative to the cwd, relative to the repo root, or as
    `configs/...` inside the package."""
    candidate = Path(path)
    for option in (candidate, REPO_ROOT / candidate, _in_package(candidate)):
        if option is not None and option.is_file():
            return option
    raise ConfigError(f"config file not found: {path} (looked in the current folder, in {REPO_ROOT} "
                      f"and in {CONFIG_DIR})")


def config_name(path: str | Path) -> str:
    """The `configs/...` name of a packaged config (however it was reached: symlink, absolute or repo
    path), else the path as given; one spelling per file, for registries and messages."""
    try:
        resolved = resolve_config_path(path).resolve()
        return Path("configs", resolved.relative_to(CONFIG_DIR)).as_posix()
    except (ConfigError, ValueError):
        return str(path)


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> DictConfig:
    """Load a YAML config and apply `key=value` overrides such as `data.batch_size=2`."""
    resolved = resolve_config_path(path)
    try:
        cfg = OmegaConf.load(resolved)
    except Exception as exc:  # noqa: BLE001 - yaml's and OmegaConf's errors alike: the file is not valid YAML
        raise ConfigError(f"config file {resolved} is not valid YAML: {' '.join(str(exc).split())[:300]}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"config file {resolved} must hold a mapping of sections (key: value), not a list")
    overrides = list(overrides)
    bad = [o for o in overrides if "=" not in o or not o.split("=", 1)[0].strip()]
    if bad:
        raise ConfigError(f"overrides must look like key=value (e.g. data.batch_size=2); got: {bad}")
    if overrides:
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
        except Exception as exc:  # noqa: BLE001 - a malformed value ("[1,") or key, or a type clash with the file
            raise ConfigError(f"cannot apply the overrides {overrides}: {' '.join(str(exc).split())[:300]}") from None
    return cfg


def model_config(cfg: DictConfig) -> dict:
    """The `model:` section as a plain dict, the form the model constructors and loaders take."""
    return OmegaConf.to_container(cfg.model, resolve=True)


@functools.cache
def audio_settings() -> DictConfig:
    """The `audio:` section of configs/audio.yaml (read once), for the callers of `latentsync.utils.audio`."""
    return load_config(CONFIG_DIR / "audio.yaml").audio
