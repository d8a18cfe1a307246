"""configs/inference.yaml as typed, frozen records, read once per process (`inference_settings()`).

Everything an inference run takes from the packaged config (presets, DeepCache, the VAE's frames per call, the
allocator, the result check, the app's limits) is checked here with the file and key named in any error, and
passed down from the drivers (api, app, benchmarks); no lower module reads the YAML itself.
"""

from __future__ import annotations

from functools import lru_cache

from omegaconf import DictConfig, OmegaConf

from latentsync.config import CONFIG_DIR, load_config
from latentsync.settings import Section, SettingsError, at_least

INFERENCE_CONFIG = CONFIG_DIR / "inference.yaml"


class Preset(Section):
    """One `presets:` entry: the option values `--preset NAME` stands for (explicit flags win)."""

    scheduler: str
    inference_steps: int = at_least(1)
    guidance_scale: float
    guidance_fraction: float
    enable_deepcache: bool
    dtype: str


class DeepCacheSettings(Section):
    cache_interval: int = at_least(1)
    cache_branch_id: int = at_least(0)


class VAESettings(Section):
    frames_per_call: int = at_least(0)  # frames per VAE call; 0 = every frame of a chunk in one call
    encode_frames_per_call: int = at_least(1)  # the inference encoder's (1: moments independent of the neighbours)


class ReuseSettings(Section):
    memory_mb: float  # VAE moments of frames shown again kept in memory up to this, then spilled to a temp folder


class CacheSettings(Section):
    max_gb: float  # size limit of the reuse cache across runs (10^9 bytes; 0 = no limit)
    folder: str  # subfolder of --cache_dir for prepared videos
    shard_mb: float = at_least(0.001)  # a prepared video's VAE moments (and occluder masks) go in shards of this size


class AllocatorSettings(Section):
    keep_freed_memory: bool


class ResultSettings(Section):
    min_face_fraction: float


class ProgressWeights(Section):
    speaker: float
    faces: float
    denoising: float
    writing: float


class AppSettings(Section):
    max_upload_mb: float
    max_video_seconds: float
    example_seconds: float
    preview_seconds: float
    progress_weights: ProgressWeights


class InferenceSettings(Section):
    """The whole file; `presets` is a name -> Preset mapping (any number of presets)."""

    deepcache: DeepCacheSettings
    vae: VAESettings
    reuse: ReuseSettings
    cache: CacheSettings
    allocator: AllocatorSettings
    result: ResultSettings
    app: AppSettings

    @property
    def presets(self) -> dict[str, Preset]:
        return dict(self._presets)

    def preset(self, name: str) -> Preset:
        """The preset called `name`, or a SettingsError naming the ones there are."""
        if name not in self._presets:
            raise SettingsError(f"unknown --preset {name!r}; choose one of {', '.join(self._presets)}")
        return self._presets[name]

    @classmethod
    def from_config(cls, cfg: DictConfig, source: str) -> InferenceSettings:
        record = super().from_config(cfg, source)
        presets = cfg.get("presets")
        if not isinstance(presets, DictConfig) or not presets:
            raise SettingsError(f"{source}: no 'presets:' section")
        built = tuple((str(name), Preset.from_dict(OmegaConf.to_container(values, resolve=True), source,
                                                   prefix=f"presets.{name}."))
                      for name, values in presets.items())
        object.__setattr__(record, "_presets", dict(built))
        return record


@lru_cache(maxsize=1)
def inference_settings() -> InferenceSettings:
    """The packaged configs/inference.yaml, checked once per process."""
    return InferenceSettings.from_config(load_config(INFERENCE_CONFIG), str(INFERENCE_CONFIG))
