"""Python API: `latentsync.lipsync(video, audio, out, **options)` — used by the CLI, batch mode and the app.

The options are one frozen record (`LipsyncOptions`) that checks itself when it is made; the models are loaded
once into a `LoadedPipeline` (`build_pipeline`, which also takes components a caller has already loaded) and
reused across runs. Building the pipeline checks everything a user can get wrong before any heavy work starts:
the files exist, the U-Net checkpoint fits the config (else the error names the config that fits), the Whisper
width matches the U-Net's audio cross-attention.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch

from latentsync.config import CONFIG_DIR, REPO_ROOT, load_config, model_config
from latentsync.errors import InputError
from latentsync.pipelines.frame_schedule import check_length_mode
from latentsync.pipelines.options import SamplingOptions
from latentsync.pipelines.sampling import guided_step_count
from latentsync.pipelines.settings import inference_settings
from latentsync.utils.allocator import keep_freed_memory
from latentsync.utils.progress import RunProgress
from latentsync.validation import (
    check_device,
    check_face_options,
    check_occlusion,
    check_output_path,
    check_run_options,
)

logger = logging.getLogger(__name__)

__all__ = ["DTYPES", "InputError", "LipsyncOptions", "LoadedPipeline", "PRESETS", "build_pipeline",
           "check_pipeline_inputs", "face_coverage_warning", "lipsync", "prepare", "SCHEDULERS"]

DEFAULT_UNET_CONFIG = "configs/unet/stage2.yaml"
DEFAULT_CKPT = "checkpoints/latentsync_unet.pt"
DEFAULT_VAE = "checkpoints/sd-vae-ft-mse"
WHISPER_BY_WIDTH = {384: "checkpoints/whisper/tiny.pt", 768: "checkpoints/whisper/small.pt"}
SCHEDULERS = ("ddim", "dpmsolver++")
DTYPES = ("auto", "fast", "fp32", "fp16", "bf16")  # see resolve_dtype
PRESETS = tuple(inference_settings().presets)


def apply_process_settings() -> None:
    """Process-wide settings of an inference run (configs/inference.yaml `allocator`), applied by build_pipeline."""
    if inference_settings().allocator.keep_freed_memory:
        keep_freed_memory()  # no re-zeroed pages for every activation of every U-Net step


def preset_values(name: str) -> dict:
    """The option values of a preset (configs/inference.yaml `presets`)."""
    return asdict(inference_settings().preset(name))


@dataclass(frozen=True)
class LipsyncOptions:
    """Every knob of a run, checked once when the record is made. Defaults are the `quality` preset: the
    official inference.sh run. `from_kwargs` applies a preset under the values given explicitly."""

    unet_config_path: str = DEFAULT_UNET_CONFIG
    inference_ckpt_path: str = DEFAULT_CKPT
    vae_path: str = DEFAULT_VAE
    whisper_path: str | None = None  # None: checkpoints/whisper/{tiny,small}.pt by the U-Net's audio width
    inference_steps: int = 20
    guidance_scale: float = 1.5
    guidance_fraction: float = 1.0  # share of the steps, from the first, with classifier-free guidance (1 = all)
    seed: int = 1247
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto (fp16 on CUDA capability > 7, else fp32) | fast | fp32 | fp16 | bf16
    length_mode: str = "pingpong"
    scheduler: str = "ddim"
    enable_deepcache: bool = True  # as the official inference.sh and app
    preset: str = "quality"
    face_detector: str = "mediapipe"
    face_choice: str | None = None  # largest | tracked | speaker | index | position; None: configs/faces.yaml
    face_index: int | None = None  # for index: the n-th face from the left (0 = leftmost)
    face_position: str | tuple | None = None  # for position: "X,Y" or (x, y) in pixels
    temp_dir: str | None = None  # kept for CLI compatibility; nothing is written outside the output folder
    occlusion: str | None = None  # auto | hands | off: keep what covers the mouth; None: configs/faces.yaml
    debug_video: str | None = None  # also write this companion video with the face pass's decisions drawn on
    cache: bool = True  # reuse what depends only on the video across runs (face pass, VAE moments); False: --no_cache
    cache_dir: str | None = None  # the reuse cache's folder (None: $LATENTSYNC_CACHE_DIR, else the user cache folder)
    progress: bool = True  # console progress bars
    on_progress: Callable[[str, int, int], None] | None = None  # callback(stage, done, total), e.g. the app's

    def __post_init__(self):
        check_run_options(self.inference_steps, self.guidance_scale, self.seed, self.guidance_fraction)
        choice, index, position = check_face_options(self.face_choice, self.face_index, self.face_position)
        check_length_mode(self.length_mode)
        for name, value in (("face_choice", choice), ("face_index", index), ("face_position", position),
                            ("occlusion", check_occlusion(self.occlusion))):
            object.__setattr__(self, name, value)  # normalised once, while the record is made
        for flag, value, allowed in (("--scheduler", self.scheduler, SCHEDULERS), ("--dtype", self.dtype, DTYPES)):
            if value not in allowed:
                raise InputError(f"unknown {flag} {value!r}; choose one of {', '.join(allowed)}")
        inference_settings().preset(self.preset)  # an unknown preset is an error naming the known ones

    @classmethod
    def from_kwargs(cls, **kwargs) -> LipsyncOptions:
        """The preset's values (`preset=`, default quality) under every option given (None = not given)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; valid options: {sorted(known)}")
        given = {k: v for k, v in kwargs.items() if v is not None or k == "whisper_path"}
        preset = given.get("preset", "quality")
        return cls(**{**preset_values(preset), **given, "preset": preset})  # explicit options win

    def changed(self, **changes) -> LipsyncOptions:
        """A copy with some options changed (checked again); an unknown name is a TypeError."""
        return replace(self, **changes)

    def guided_steps(self) -> int:
        """Leading steps with guidance, rounded up to DeepCache's full steps when it is on (sampling.py): the one
        count the settings line reports and the run uses."""
        interval = inference_settings().deepcache.cache_interval if self.enable_deepcache else None
        return guided_step_count(self.inference_steps, self.guidance_fraction, interval)

    def settings_line(self, device, dtype) -> str:
        """The effective settings, printed once per run."""
        deepcache = "off"
        if self.enable_deepcache:
            dc = inference_settings().deepcache
            deepcache = f"on (interval {dc.cache_interval}, branch {dc.cache_branch_id})"
        guidance = f"guidance {self.guidance_scale:g}"
        if self.guided_steps() < self.inference_steps:
            guidance += f" on the first {self.guided_steps()} steps only"
        return (f"settings: preset {self.preset}; device {device}, dtype {str(dtype).replace('torch.', '')}, "
                f"sampler {self.scheduler}, {self.inference_steps} steps, {guidance}, DeepCache {deepcache}")

    def sampler_kwargs(self) -> dict:
        """The sampling options under `SamplingOptions`' names."""
        return {"num_inference_steps": self.inference_steps, "guidance_scale": self.guidance_scale,
                "guidance_fraction": self.guidance_fraction}

    def sampling_options(self, model: SamplingOptions) -> SamplingOptions:
        """The pipeline's options for this run: the model's clip format (`LoadedPipeline.clip`) with this run's
        sampling, length mode, face choice, occluders and debug video."""
        return replace(model, **self.sampler_kwargs(), guided_steps=self.guided_steps(),
                       length_mode=self.length_mode, face_choice=self.face_choice, face_index=self.face_index,
                       face_position=self.face_position, occlusion=self.occlusion,
                       debug_video_path=self.debug_video)


@dataclass(frozen=True)
class LoadedPipeline:
    """A pipeline with its models loaded (`build_pipeline`), reused by batch mode, the app and evaluation."""

    pipeline: object  # LipsyncPipeline
    clip: SamplingOptions  # what the models were built for: clip length, fps, sample rate, resolution, mask, dtype
    device: torch.device
    dtype: torch.dtype


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return check_device(name)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), so bf16 is faster than fp32 here."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without oneDNN
        return False


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """fp16 on CUDA with compute capability > 7 (as the official), fp32 elsewhere unless asked otherwise."""
    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if name == "auto":
        if device.type == "cuda" and torch.cuda.get_device_capability(device)[0] > 7:
            return torch.float16
        return torch.float32
    if name == "fast":  # the quickest supported half type of the device
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    if name not in table:
        raise InputError(f"unknown dtype {name!r}; choose one of {', '.join(DTYPES)}")
    if name == "fp16" and device.type == "cpu":
        raise InputError("fp16 is not supported on the CPU; use --dtype fp32 or bf16")
    return table[name]


def _repo_path(path: str) -> Path:
    """Paths in options are relative to the cwd, falling back to the repository root (like configs)."""
    p = Path(path)
    if p.exists() or p.is_absolute():
        return p
    in_repo = REPO_ROOT / p
    return in_repo if in_repo.exists() else p


def _require(path: Path, what: str, hint: str) -> Path:
    if not path.exists():
        raise InputError(f"{what} not found at {path}. {hint}")
    return path


def build_scheduler(name: str):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    config = DDIMScheduler.load_config(str(CONFIG_DIR))
    if name == "ddim":
        return DDIMScheduler.from_config(config)
    if name == "dpmsolver++":
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++", solver_order=2)
    raise InputError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")


def check_pipeline_inputs(options: LipsyncOptions) -> dict:
    """Everything `build_pipeline` needs, checked without loading a model: the config, device, dtype and the
    checkpoint paths (the app calls this at start). Returns them by name."""
    setup_hint = "Run `source setup_env.sh` on a machine with internet access, or see checkpoints/README.md."
    config_path = _require(_repo_path(options.unet_config_path), "U-Net config", "Pass --unet_config_path.")
    config = load_config(config_path)
    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    ckpt = _require(_repo_path(options.inference_ckpt_path), "U-Net checkpoint", setup_hint)
    width = int(config.model.cross_attention_dim)
    whisper_path = options.whisper_path or WHISPER_BY_WIDTH.get(width)
    if whisper_path is None:
        raise InputError(f"no default Whisper model for cross_attention_dim {width}; pass --whisper_path")
    whisper = _require(_repo_path(whisper_path), "Whisper checkpoint", setup_hint)
    vae_dir = _require(_repo_path(options.vae_path), "VAE (diffusers AutoencoderKL folder)", setup_hint)
    return {"config_path": config_path, "config": config, "device": device, "dtype": dtype, "ckpt": ckpt,
            "whisper": whisper, "vae_dir": vae_dir, "width": width}


def clip_format(config, dtype: torch.dtype) -> SamplingOptions:
    """The U-Net config's clip format (its `data:` section) as the base of every run's SamplingOptions."""
    data = config.data
    return SamplingOptions(num_frames=int(data.num_frames), video_fps=int(data.video_fps),
                           audio_sample_rate=int(data.audio_sample_rate), resolution=int(data.resolution),
                           mask_image_path=data.get("mask_image_path") or None, weight_dtype=dtype)


def build_pipeline(options: LipsyncOptions, *, unet=None, vae=None, audio_encoder=None,
                   clip: SamplingOptions | None = None) -> LoadedPipeline:
    """The pipeline `options` describe, its models loaded (VAE, Whisper, U-Net, scheduler, face detector).

    Components a caller has already loaded (U-Net validation during training, the benchmarks' random models) are
    used as they are, on their own device and dtype; `clip` then gives the clip format (default: the U-Net
    config's). What is not given is loaded from the options' paths, all checked before the first model loads."""
    from latentsync.pipelines.lipsync_pipeline import LipsyncPipeline

    if unet is None or vae is None or audio_encoder is None:
        checked = check_pipeline_inputs(options)
        config, device, dtype = checked["config"], checked["device"], checked["dtype"]
    else:
        config = None if clip is not None else load_config(_repo_path(options.unet_config_path))
        device = resolve_device(options.device)
        dtype = resolve_dtype(options.dtype, device)
    apply_process_settings()  # before the weights load
    if unet is None:
        unet = _load_unet(checked["config"], checked["ckpt"], device, dtype)
    if audio_encoder is None:
        audio_encoder = _load_audio_encoder(checked, device)
    if vae is None:
        vae = _load_vae(checked["vae_dir"], device, dtype)
    pipeline = LipsyncPipeline(vae=vae, audio_encoder=audio_encoder, unet=unet,
                               scheduler=build_scheduler(options.scheduler),
                               face_detector=_face_detector(options.face_detector))
    if options.enable_deepcache:
        from latentsync.pipelines.deepcache import enable_deepcache

        enable_deepcache(pipeline, inference_settings().deepcache)
    return LoadedPipeline(pipeline, clip or clip_format(config, dtype), device, dtype)


def _load_unet(config, ckpt: Path, device: torch.device, dtype: torch.dtype):
    from latentsync.models.registry import load_unet

    try:
        # Inference refuses partial loads: a skipped or missing tensor would mean partly random weights.
        unet, _ = load_unet(model_config(config), str(ckpt), device="cpu", allow_partial=False)
    except (ValueError, KeyError) as exc:  # the loader's mismatch/corruption errors name the fitting config
        raise InputError(str(exc)) from exc
    return unet.to(device=device, dtype=dtype)


def _load_audio_encoder(checked: dict, device: torch.device):
    """Whisper for the U-Net config, refused when its width does not match the U-Net's audio cross-attention."""
    from latentsync.whisper.audio2feature import Audio2Feature

    config, whisper, width = checked["config"], checked["whisper"], checked["width"]
    encoder = Audio2Feature(model_path=str(whisper), device=str(device), num_frames=config.data.num_frames,
                            audio_feat_length=list(config.data.audio_feat_length))
    if encoder.embedding_dim != width:
        raise InputError(f"Whisper model {whisper} gives {encoder.embedding_dim}-dim features but the U-Net "
                         f"config {checked['config_path']} expects cross_attention_dim {width}; use the matching "
                         f"Whisper checkpoint (tiny = 384, small = 768)")
    return encoder


def _load_vae(vae_dir: Path, device: torch.device, dtype: torch.dtype):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(str(vae_dir), torch_dtype=dtype).to(device)
    vae.config.scaling_factor = 0.18215  # sd-vae-ft-mse, as the official pipeline sets them
    vae.config.shift_factor = 0
    return vae


def _face_detector(name: str):
    from latentsync.faces.detector import FaceDetector

    try:
        return FaceDetector(backend=name)
    except (FileNotFoundError, ImportError) as exc:
        raise InputError(str(exc)) from exc


def face_coverage_warning(result) -> str | None:
    """A warning when fewer than `result.min_face_fraction` (configs/inference.yaml) of the output frames had a
    face and were edited: the output is then mostly the input video, unchanged."""
    share = inference_settings().result.min_face_fraction
    if result.num_frames and result.frames_with_face < share * result.num_frames:
        return (f"a face was found and lip-synced in only {result.frames_with_face} of {result.num_frames} frames of "
                f"{result.output_path}; the other frames are the input unchanged (check that the face is visible, "
                "large enough and not turned away; --face_detector or --face_choice may help)")
    return None


def run_options(options: LipsyncOptions | None, option_values: dict) -> LipsyncOptions:
    """A run's options: the record given (with `option_values` changed), or one made from `option_values` (a preset
    under the values given); an unknown name is a TypeError."""
    if options is None:
        return LipsyncOptions.from_kwargs(**option_values)
    return options.changed(**option_values) if option_values else options


def check_run_files(video, audio, out, debug_video: str | None = None) -> None:
    """The inputs exist as files; the outputs are neither inputs nor folders (their folders are created)."""
    for path, what in ((video, "video"), (audio, "audio")):
        if Path(path).is_dir():
            raise InputError(f"the {what} path {path} is a folder; give a {what} file")
        if not Path(path).is_file():
            raise InputError(f"{what} file not found: {path}")
    check_output_path(out, (video, audio))
    if debug_video is not None:
        check_output_path(debug_video, (video, audio, out), flag="--debug_video")


def lipsync(video: str, audio: str, out: str, options: LipsyncOptions | None = None, *,
            pipeline: LoadedPipeline | None = None, **option_values):
    """Lip-sync `video` to `audio` and write `out` (atomically). Returns a LipsyncResult.

    Options come as a `LipsyncOptions` record or by keyword (a preset under the values given, as
    `LipsyncOptions.from_kwargs`; with a record, keywords change it); an unknown name is a TypeError.
    `pipeline` (from `build_pipeline`) lets callers such as batch mode and the app reuse loaded models."""
    options = run_options(options, option_values)
    check_run_files(video, audio, out, options.debug_video)
    loaded = pipeline or build_pipeline(options)
    if options.progress:  # once per run, next to the progress bars
        print(options.settings_line(loaded.device, loaded.dtype), file=sys.stderr, flush=True)
    generator = torch.Generator(device="cpu").manual_seed(options.seed if options.seed >= 0 else torch.seed())
    return loaded.pipeline.run(str(video), str(audio), str(out), options.sampling_options(loaded.clip),
                               generator=generator, progress=RunProgress(options.progress, options.on_progress),
                               cache=reuse_cache(options))


def prepare(video: str, options: LipsyncOptions | None = None, *, pipeline: LoadedPipeline | None = None,
            **option_values) -> tuple[int, bool]:
    """Prepare `video` ahead of any audio: its face pass and the VAE moments of its faces go to the reuse cache, so
    every later run on it (with the same face and model settings) skips them. Returns (frames encoded now, whether
    it was prepared already)."""
    options = run_options(options, option_values)
    if not options.cache:
        raise InputError("prepare fills the reuse cache, so it cannot run with --no_cache")
    if not Path(video).is_file():
        raise InputError(f"video file not found: {video}")
    loaded = pipeline or build_pipeline(options)
    return loaded.pipeline.prepare(str(video), options.sampling_options(loaded.clip), reuse_cache(options),
                                   progress=RunProgress(options.progress, options.on_progress))


def reuse_cache(options: LipsyncOptions):
    """The reuse cache across runs (configs/inference.yaml `cache:`), or None with `cache=False` (--no_cache)."""
    if not options.cache:
        return None
    from latentsync.utils.content_cache import open_entry_cache

    settings = inference_settings().cache
    return open_entry_cache(options.cache_dir, settings.folder, settings.max_gb, what="reuse cache")
