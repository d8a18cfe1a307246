"""Python API: `latentsync.lipsync(video, audio, out, **options)` — used by the CLI, batch mode and the app.

Building the pipeline checks everything a user can get wrong before any heavy work starts: the files
exist, the U-Net checkpoint fits the config (else the error names the config that fits), the Whisper
width matches the U-Net's audio cross-attention.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from latentsync.config import CONFIG_DIR, REPO_ROOT, inference_settings, load_config, model_config
from latentsync.errors import InputError
from latentsync.pipelines.frame_schedule import check_length_mode
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

__all__ = ["DTYPES", "InputError", "LipsyncOptions", "PRESETS", "build_pipeline", "check_pipeline_inputs",
           "face_coverage_warning", "lipsync", "SCHEDULERS"]

DEFAULT_UNET_CONFIG = "configs/unet/stage2.yaml"
DEFAULT_CKPT = "checkpoints/latentsync_unet.pt"
DEFAULT_VAE = "checkpoints/sd-vae-ft-mse"
WHISPER_BY_WIDTH = {384: "checkpoints/whisper/tiny.pt", 768: "checkpoints/whisper/small.pt"}
SCHEDULERS = ("ddim", "dpmsolver++")
DTYPES = ("auto", "fast", "fp32", "fp16", "bf16")  # see resolve_dtype


PRESETS = ("quality", "fast")


def apply_process_settings() -> None:
    """Process-wide settings of an inference run (configs/inference.yaml `allocator`); build_pipeline calls it,
    and so should code that builds a LipsyncPipeline itself (the benchmarks)."""
    if inference_settings().allocator.keep_freed_memory:
        keep_freed_memory()  # no re-zeroed pages for every activation of every U-Net step


def preset_values(name: str) -> dict:
    """The option values of a preset (configs/inference.yaml `presets`)."""
    from omegaconf import OmegaConf

    presets = inference_settings().presets
    if name not in presets:
        raise InputError(f"unknown --preset {name!r}; choose one of {', '.join(presets)}")
    return dict(OmegaConf.to_container(presets[name]))


@dataclass
class LipsyncOptions:
    """Every knob of a run. Defaults are the `quality` preset: the official inference.sh run."""

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
    progress: bool = True  # console progress bars
    on_progress: Callable[[str, int, int], None] | None = None  # callback(stage, done, total), e.g. the app's

    @classmethod
    def from_kwargs(cls, **kwargs) -> LipsyncOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; valid options: {sorted(known)}")
        given = {k: v for k, v in kwargs.items() if v is not None or k == "whisper_path"}
        preset = given.get("preset", "quality")
        return cls(**{**preset_values(preset), **given, "preset": preset})  # explicit options win

    def settings_line(self, device, dtype) -> str:
        """The effective settings, printed once per run."""
        from latentsync.pipelines.sampling import guided_step_count

        deepcache, interval = "off", None
        if self.enable_deepcache:
            from latentsync.pipelines.deepcache import packaged_deepcache_settings

            dc = packaged_deepcache_settings()
            deepcache, interval = f"on (interval {dc.cache_interval}, branch {dc.cache_branch_id})", dc.cache_interval
        guidance = f"guidance {self.guidance_scale:g}"
        guided = guided_step_count(self.inference_steps, self.guidance_fraction, interval)
        if guided < self.inference_steps:
            guidance += f" on the first {guided} steps only"
        return (f"settings: preset {self.preset}; device {device}, dtype {str(dtype).replace('torch.', '')}, "
                f"sampler {self.scheduler}, {self.inference_steps} steps, {guidance}, DeepCache {deepcache}")

    def sampler_kwargs(self) -> dict:
        """The sampling options as `LipsyncPipeline.__call__` takes them (the API, benchmarks, GPU check)."""
        return {"num_inference_steps": self.inference_steps, "guidance_scale": self.guidance_scale,
                "guidance_fraction": self.guidance_fraction}


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


def build_pipeline(options: LipsyncOptions):
    """Load VAE, Whisper, U-Net and scheduler per the options and return (pipeline, config, device, dtype)."""
    from diffusers import AutoencoderKL

    from latentsync.models.registry import load_unet
    from latentsync.pipelines.lipsync_pipeline import LipsyncPipeline
    from latentsync.whisper.audio2feature import Audio2Feature

    checked = check_pipeline_inputs(options)
    config_path, config, device, dtype = checked["config_path"], checked["config"], checked["device"], checked["dtype"]
    ckpt, whisper, vae_dir, width = checked["ckpt"], checked["whisper"], checked["vae_dir"], checked["width"]
    apply_process_settings()  # before the weights load

    try:
        # Inference refuses partial loads: a skipped or missing tensor would mean partly random weights.
        unet, _ = load_unet(model_config(config), str(ckpt), device="cpu", allow_partial=False)
    except (ValueError, KeyError) as exc:  # the loader's mismatch/corruption errors name the fitting config
        raise InputError(str(exc)) from exc
    unet = unet.to(device=device, dtype=dtype)

    audio_encoder = Audio2Feature(model_path=str(whisper), device=str(device), num_frames=config.data.num_frames,
                                  audio_feat_length=list(config.data.audio_feat_length))
    if audio_encoder.embedding_dim != width:
        raise InputError(f"Whisper model {whisper} gives {audio_encoder.embedding_dim}-dim features but the U-Net "
                         f"config {config_path} expects cross_attention_dim {width}; use the matching Whisper "
                         f"checkpoint (tiny = 384, small = 768)")
    vae = AutoencoderKL.from_pretrained(str(vae_dir), torch_dtype=dtype).to(device)
    vae.config.scaling_factor = 0.18215  # sd-vae-ft-mse, as the official pipeline sets them
    vae.config.shift_factor = 0

    face_detector = _face_detector(options.face_detector)
    pipeline = LipsyncPipeline(vae=vae, audio_encoder=audio_encoder, unet=unet, scheduler=build_scheduler(options.scheduler),
                               face_detector=face_detector)
    if options.enable_deepcache:
        from latentsync.pipelines.deepcache import enable_deepcache

        enable_deepcache(pipeline)
    return pipeline, config, device, dtype


def _face_detector(name: str):
    from latentsync.faces.detector import FaceDetector

    try:
        return FaceDetector(backend=name)
    except (FileNotFoundError, ImportError) as exc:
        raise InputError(str(exc)) from exc


def face_coverage_warning(result) -> str | None:
    """A warning when fewer than `result.min_face_fraction` (configs/inference.yaml) of the output frames had a
    face and were edited: the output is then mostly the input video, unchanged."""
    share = float(inference_settings().result.min_face_fraction)
    if result.num_frames and result.frames_with_face < share * result.num_frames:
        return (f"a face was found and lip-synced in only {result.frames_with_face} of {result.num_frames} frames of "
                f"{result.output_path}; the other frames are the input unchanged (check that the face is visible, "
                "large enough and not turned away; --face_detector or --face_choice may help)")
    return None


def lipsync(video: str, audio: str, out: str, pipeline_bundle=None, **options):
    """Lip-sync `video` to `audio` and write `out` (atomically). Returns a LipsyncResult.

    `pipeline_bundle` (from `build_pipeline`) lets callers such as batch mode and the app reuse loaded models.
    """
    opts = LipsyncOptions.from_kwargs(**options)
    for path, what in ((video, "video"), (audio, "audio")):
        if Path(path).is_dir():
            raise InputError(f"the {what} path {path} is a folder; give a {what} file")
        if not Path(path).is_file():
            raise InputError(f"{what} file not found: {path}")
    check_run_options(opts.inference_steps, opts.guidance_scale, opts.seed, opts.guidance_fraction)
    face_choice, face_index, face_position = check_face_options(opts.face_choice, opts.face_index, opts.face_position)
    check_length_mode(opts.length_mode)
    occlusion = check_occlusion(opts.occlusion)
    check_output_path(out, (video, audio))
    if opts.debug_video is not None:
        check_output_path(opts.debug_video, (video, audio, out), flag="--debug_video")
    pipeline, config, device, dtype = pipeline_bundle or build_pipeline(opts)
    if opts.progress:  # once per run, next to the progress bars
        print(opts.settings_line(device, dtype), file=sys.stderr, flush=True)
    generator = torch.Generator(device="cpu").manual_seed(opts.seed if opts.seed >= 0 else torch.seed())
    return pipeline(
        video_path=str(video),
        audio_path=str(audio),
        video_out_path=str(out),
        num_frames=int(config.data.num_frames),
        video_fps=int(config.data.video_fps),
        audio_sample_rate=int(config.data.audio_sample_rate),
        height=int(config.data.resolution),
        width=int(config.data.resolution),
        **opts.sampler_kwargs(),
        weight_dtype=dtype,
        mask_image_path=config.data.get("mask_image_path") or None,
        generator=generator,
        length_mode=opts.length_mode,
        progress=RunProgress(opts.progress, opts.on_progress),
        face_choice=face_choice,
        face_index=face_index,
        face_position=face_position,
        occlusion=occlusion,
        debug_video_path=opts.debug_video,
    )
