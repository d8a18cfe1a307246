"""The inference pipeline: video + audio -> lip-synced video, streamed chunk by chunk.

Orchestration only: the numerics live in the components (U-Net, VAE, Whisper features, AlignRestore,
mask). The semantics follow the official LatentSync pipeline:
- one initial noise tensor (1, 4, 1, h, w) repeated over every frame of the video;
- per 16-frame chunk: VAE-encode the masked faces and the reference faces (posterior *sampled* with the
  generator, masked first), DDIM with classifier-free guidance whose unconditional half is zero audio
  (`[uncond, audio]` order), U-Net input `cat([latents, mask, masked latents, reference latents])`;
- decode, paste the unmasked reference pixels back, restore the face into the original frame.
What differs from the official code is operational: frames are decoded, aligned, denoised, restored and
encoded chunk by chunk (memory does not grow with video length); decoding + the face pass run in a producer
thread ahead of the networks and restore + encoding in a consumer thread behind them (`streaming.py`);
frames without a face pass through unchanged, and the output is written atomically with the audio muxed in.

`run(video, audio, out, SamplingOptions)` reads as its stages: 1. plan, 2. face pass, 3. per chunk encode ->
denoise -> decode -> blend (with restore + write behind), 4. the result. `__call__` is the official keyword call.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from latentsync.errors import NoFaceError
from latentsync.faces.choice import resolve_face_choice, say_again
from latentsync.faces.face_pass import Chunk, ChunkSource
from latentsync.faces.prepared import PreparedFaces
from latentsync.faces.settings import load_faces_config
from latentsync.pipelines.conditioning import (
    decode_latents,
    load_fixed_mask,
    mask_to_latent,
    masked_images,
    posterior_moments,
    sample_latents,
    vae_factors,
)
from latentsync.pipelines.frame_finisher import FrameFinisher
from latentsync.pipelines.frame_schedule import num_output_frames, source_frame_indices
from latentsync.pipelines.moments import FrameMoments, crop_key, last_uses
from latentsync.pipelines.options import SamplingOptions
from latentsync.pipelines.prepared_video import (
    MomentsRecorder,
    PreparedVideo,
    load_prepared,
    prepared_key,
    store_prepared,
)
from latentsync.pipelines.sampling import denoise, guided_step_count
from latentsync.pipelines.settings import inference_settings
from latentsync.pipelines.streaming import Drain, Prefetcher
from latentsync.utils.allocator import release_freed_memory
from latentsync.utils.content_cache import EntryCache
from latentsync.utils.media import MediaError, VideoInfo, VideoWriter, frame_map, probe_video, read_audio
from latentsync.utils.progress import RunProgress, StageClock
from latentsync.whisper.audio2feature import frame_feature_indices, gather_frames

logger = logging.getLogger(__name__)

__all__ = ["LipsyncPipeline", "LipsyncResult", "NoFaceError", "SamplingOptions"]


@contextlib.contextmanager
def debug_writer(path: str | None, fps: float, audio_path: str, seconds: float, like: VideoInfo | None):
    """The `--debug_video` companion's writer (None when not asked for); written atomically like the output."""
    if path is None:
        yield None
        return
    with VideoWriter(path, fps, audio_path=audio_path, audio_duration=seconds, crf=23, preset="veryfast",
                     like=like) as writer:
        yield writer


@dataclass
class LipsyncResult:
    """What a run produced, for the CLI summary, batch mode and the app."""

    output_path: Path
    num_frames: int
    frames_with_face: int
    frames_bridged: int
    fps: float
    seconds_per_stage: dict[str, float] = field(default_factory=dict)
    num_shots: int = 1  # shots of the video the output shows (tracking restarts at each cut)
    frames_with_occluder: int = 0  # output frames where something in front of the mouth was kept
    prepared_from_cache: bool = False  # the face pass (and the moments there) came from the reuse cache
    frames_encoded: int = 0  # source frames VAE-encoded by this run (each once, however often it is shown)
    face_choice: tuple[str, ...] = ()  # what the face choice said (`speaker`: its candidates and shot table)

    def summary(self) -> str:
        busy = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds_per_stage.items() if k != "wall")
        wall = self.seconds_per_stage.get("wall")
        shots = f"{self.num_shots} shots, " if self.num_shots > 1 else ""
        occluded = f", an occluder kept in {self.frames_with_occluder}" if self.frames_with_occluder else ""
        return (f"{self.output_path}: {self.num_frames} frames at {self.fps:g} fps, {shots}face in "
                f"{self.frames_with_face} ({self.frames_bridged} bridged{occluded}), "
                f"{self.num_frames - self.frames_with_face} passed through unchanged; {self.reuse_text()}; busy time "
                f"per stage (stages overlap): {busy}" + (f"; wall {wall:.1f}s" if wall is not None else ""))

    def reuse_text(self) -> str:
        cached = "face pass from the reuse cache, " if self.prepared_from_cache else ""
        return f"{cached}{self.frames_encoded} source frames VAE-encoded for {self.frames_with_face} edited"


@dataclass
class RunPlan:
    """What stage 1 decides before the first chunk, for every chunk after it."""

    num_output: int  # output frames (the audio's length, per the length mode)
    schedule: np.ndarray  # (num_output,) the source frame each output frame shows
    features: torch.Tensor  # Whisper features of the whole audio
    noise: torch.Tensor  # (1, 4, 1, h, w): the one initial noise, repeated over every frame (official)
    mask: torch.Tensor  # the fixed mouth mask image (1 = keep the reference pixel)
    mask_latent: torch.Tensor  # (1, 1, 1, h, w) the mask at latent size
    guided_steps: int  # leading steps with classifier-free guidance
    resolution: int  # aligned face size in pixels
    moments: FrameMoments | None = None  # VAE moments of the frames shown again (None: every frame encoded each time)
    last_use: dict[int, int] = field(default_factory=dict)  # source frame -> last output index that shows it
    showing: dict[str, set[int]] = field(default_factory=dict)  # crop key -> source frames with that crop still shown
    video: VideoInfo | None = None  # the input video, whose pixel aspect and colour tags the output keeps
    spill_parent: str | None = None  # where the run keeps what it spills (moments, occluder masks); None: TMPDIR

    @property
    def dtype(self) -> torch.dtype:
        return self.noise.dtype

    @property
    def keep(self) -> torch.Tensor:
        """(1, R, R) 1 where the reference pixel is kept, 0 in the generated mouth region."""
        return self.mask[0:1].float()


class LipsyncPipeline:
    """`LipsyncPipeline(vae, audio_encoder, unet, scheduler)(video_path, audio_path, video_out_path, ...)`."""

    def __init__(self, vae, audio_encoder, unet, scheduler, face_detector=None, vae_frames_per_call: int | None = None):
        self.vae = vae
        self.audio_encoder = audio_encoder
        self.unet = unet
        self.scheduler = scheduler
        self.face_detector = face_detector  # None: the default detector (built on first use)
        # frames per VAE call (0 = a chunk at once); None: configs/inference.yaml `vae.frames_per_call`
        settings = inference_settings()
        self.vae_frames_per_call = settings.vae.frames_per_call if vae_frames_per_call is None else vae_frames_per_call
        self.encode_frames_per_call = settings.vae.encode_frames_per_call  # 1: moments independent of neighbours
        self.reuse_memory_bytes = int(settings.reuse.memory_mb * 2**20)
        self.cache_shard_bytes = int(settings.cache.shard_mb * 2**20)
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.deepcache = None  # the DeepCache helper, when latentsync.pipelines.deepcache.enable_deepcache() is on

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def to(self, device) -> LipsyncPipeline:
        self.vae.to(device)
        self.unet.to(device)
        return self

    @property
    def faces_config(self):
        """The face pass's settings: the detector's, else the packaged configs/faces.yaml."""
        return self.face_detector.config if self.face_detector is not None else load_faces_config()

    def guided_step_count(self, num_inference_steps: int, guidance_fraction: float) -> int:
        """Leading steps with guidance, rounded up to DeepCache's full steps when it is on (sampling.py)."""
        interval = self.deepcache.params["cache_interval"] if self.deepcache is not None else None
        return guided_step_count(num_inference_steps, guidance_fraction, interval)

    # ---------------------------------------------------------------------------------------- call

    def __call__(self, video_path: str, audio_path: str, video_out_path: str, num_frames: int = 16,
                 video_fps: int = 25, audio_sample_rate: int = 16000, height: int | None = None,
                 width: int | None = None, num_inference_steps: int = 20, guidance_scale: float = 1.5,
                 weight_dtype: torch.dtype | None = None, eta: float = 0.0, mask_image_path: str | None = None,
                 temp_dir: str | None = None, generator: torch.Generator | None = None, callback=None,
                 callback_steps: int = 1, *, progress=True, **options) -> LipsyncResult:
        """The official call: same arguments, same meaning (`temp_dir` is not needed: nothing is written outside
        the output's folder). Our further options are `SamplingOptions` fields by keyword (`length_mode`,
        `guidance_fraction`, `face_choice`, `occlusion`, `debug_video_path`, ...); any other keyword is a TypeError,
        so a misspelled option is never silently ignored. `progress`: console bars (bool) or a `RunProgress`.
        `callback` / `callback_steps`: the official per-step hook, not supported (refused when given)."""
        if callback is not None:
            raise TypeError("LipsyncPipeline does not call `callback`; pass progress=RunProgress(True, callback) to "
                            "get (stage, done, total) reports instead")
        if height is not None and width is not None and height != width:
            raise ValueError(f"resolution must be square, got {height}x{width}")
        unknown = sorted(set(options) - set(SamplingOptions.__dataclass_fields__))
        if unknown:
            raise TypeError(f"LipsyncPipeline got unknown option(s) {unknown}; valid: see SamplingOptions")
        sampling = SamplingOptions(num_frames=num_frames, video_fps=video_fps, audio_sample_rate=audio_sample_rate,
                                   resolution=height or width, num_inference_steps=num_inference_steps,
                                   guidance_scale=guidance_scale, weight_dtype=weight_dtype, eta=eta,
                                   mask_image_path=mask_image_path, **options)
        return self.run(video_path, audio_path, video_out_path, sampling, generator=generator, progress=progress)

    @torch.no_grad()
    def run(self, video_path: str, audio_path: str, video_out_path: str, options: SamplingOptions,
            generator: torch.Generator | None = None, progress=True, cache: EntryCache | None = None) -> LipsyncResult:
        """Lip-sync `video_path` to `audio_path` into `video_out_path` (written atomically, the audio muxed in).

        `cache`: the reuse cache across runs (`prepared_video.py`): a video prepared before is not face-processed
        or encoded again, and what this run computes is kept there for the next."""
        if options.resolution is None:
            options = replace(options, resolution=self.unet.config.sample_size * self.vae_scale_factor)
        progress, clock = RunProgress.of(progress), StageClock()
        with self._eval_mode():
            # 1. Plan: audio, which source frame each output frame shows, Whisper features, initial noise, mask.
            plan = self.plan(video_path, audio_path, options, generator, clock)
            plan.spill_parent = str(Path(video_out_path).parent)  # nothing is written outside the output's folder
            key, prepared = self.look_up(video_path, options, cache, plan.spill_parent)
            faces = usable_faces(prepared, plan)
            try:
                self.start_moments(plan, options, prepared, cache, key)
                # 2. The face pass, streamed along the output (decode, shots, detect, track, align, occluders).
                source = self.face_source(video_path, plan, options, clock, progress, faces)
                # 3. Per chunk: encode -> denoise -> decode -> blend; restore + write run behind in their own thread.
                wall_start = time.perf_counter()
                edited = self.edit_and_write(source, plan, options, generator, clock, progress, audio_path,
                                             video_out_path)
                if cache is not None:
                    self.keep_prepared(cache, key, source, plan, faces)
            finally:
                if plan.moments is not None:
                    plan.moments.close()
        # 4. What was done.
        timings = clock.as_dict()
        timings["wall"] = timings.get("audio", 0.0) + timings.get("speaker", 0.0) + time.perf_counter() - wall_start
        result = self.result(video_out_path, source, plan, edited, options.video_fps, timings)
        result.prepared_from_cache = faces is not None
        result.frames_encoded = plan.moments.encoded if plan.moments is not None else edited
        return result

    @torch.no_grad()
    def prepare(self, video_path: str, options: SamplingOptions, cache: EntryCache, progress=True) -> tuple[int, bool]:
        """Fill the reuse cache for `video_path` before any audio is known: the face pass over every frame and the
        VAE moments of every edited frame. Returns (frames encoded now, whether it was prepared already)."""
        if options.resolution is None:
            options = replace(options, resolution=self.unet.config.sample_size * self.vae_scale_factor)
        progress = RunProgress.of(progress)
        info = probe_video(video_path)
        n_video = len(frame_map(video_path, options.video_fps, info.num_frames, info.fps))
        schedule = np.arange(n_video, dtype=np.int64)
        mask = load_fixed_mask(options.resolution, options.mask_image_path, fixed_mask=self.faces_config.fixed_mask)
        plan = RunPlan(n_video, schedule, None, None, mask, None, 0, options.resolution, last_use=last_uses(schedule),
                       spill_parent=spill_folder_of(cache))
        key, prepared = self.look_up(video_path, options, cache, plan.spill_parent)
        faces = usable_faces(prepared, plan)
        self.start_moments(plan, options, prepared, cache, key)
        try:
            source = self.face_source(video_path, plan, options, StageClock(), progress, faces)
            bar = progress.stage("encoding", n_video)
            for chunk in source:
                if chunk.faces is not None:
                    self.chunk_moments(chunk, *masked_images(chunk.faces, plan.mask)[:2], plan)
                bar.update(len(chunk.frames))
            bar.close()
            self.keep_prepared(cache, key, source, plan, faces)
            return plan.moments.encoded, faces is not None
        finally:
            plan.moments.close()

    @contextlib.contextmanager
    def _eval_mode(self):
        """The U-Net in eval mode for the run, as it was afterwards (U-Net validation calls this mid-training)."""
        was_training = self.unet.training
        self.unet.eval()
        try:
            yield
        finally:
            if was_training:
                self.unet.train()

    # ---------------------------------------------------------------------------------------- 1. plan

    def plan(self, video_path: str, audio_path: str, options: SamplingOptions, generator, clock) -> RunPlan:
        """Stage 1: the output's length and frame schedule, the audio features, the initial noise and the mask."""
        with clock.measure("audio"):
            audio = read_audio(audio_path, options.audio_sample_rate)
            audio_seconds = len(audio) / options.audio_sample_rate
            if audio_seconds < 1.0 / options.video_fps:
                raise MediaError(f"audio is shorter than one video frame ({audio_seconds:.3f} s): {audio_path}")
        info = probe_video(video_path)
        n_video = len(frame_map(video_path, options.video_fps, info.num_frames, info.fps))
        n_out = num_output_frames(audio_seconds, n_video, options.video_fps, options.length_mode)
        schedule = source_frame_indices(n_out, n_video, options.length_mode)
        logger.info("video %s: %d frames at %.3g fps -> %d output frames at %d fps (%s)", video_path,
                    info.num_frames, info.fps, n_out, options.video_fps, options.length_mode)
        with clock.measure("audio"):
            if options.length_mode == "silence":  # the video outlasts the audio: the mouth follows silence to its end
                wanted = round(n_out / options.video_fps * options.audio_sample_rate)
                audio = np.pad(audio, (0, max(0, wanted - len(audio))))
            features = self.audio_encoder.audio2feat(audio)  # the decoded 16 kHz samples: no second decode
        mask = load_fixed_mask(options.resolution, options.mask_image_path, fixed_mask=self.faces_config.fixed_mask)
        noise = self.initial_noise(options, generator)
        latent_hw = options.resolution // self.vae_scale_factor
        mask_latent = mask_to_latent(mask[0:1][None], (latent_hw, latent_hw)).to(self.device, noise.dtype)
        guided = options.guided_steps or self.guided_step_count(options.num_inference_steps, options.guidance_fraction)
        return RunPlan(n_out, schedule, features, noise, mask, mask_latent, guided, options.resolution,
                       last_use=last_uses(schedule), video=info)

    def initial_noise(self, options: SamplingOptions, generator) -> torch.Tensor:
        """The official one noise tensor (1, 4, 1, h, w), drawn on the generator's device, scaled for the scheduler."""
        self.scheduler.set_timesteps(options.num_inference_steps, device=self.device)  # for init_noise_sigma
        latent_hw = options.resolution // self.vae_scale_factor
        noise = torch.randn((1, self.vae.config.latent_channels, 1, latent_hw, latent_hw), generator=generator,
                            device=generator.device if generator is not None else "cpu", dtype=torch.float32)
        return (noise * self.scheduler.init_noise_sigma).to(self.device, options.weight_dtype or self.unet.dtype)

    # ---------------------------------------------------------------------------------------- 2. face pass

    def face_source(self, video_path: str, plan: RunPlan, options: SamplingOptions, clock, progress,
                    faces: PreparedFaces | None = None) -> ChunkSource:
        """Stage 2: the streamed face pass (with `speaker`, its pre-pass runs here, before the first chunk), or the
        replay of one done before (`faces`, from the reuse cache)."""
        if faces is not None:
            say_again(faces.report)
            return ChunkSource(video_path, plan.schedule, options.num_frames, plan.resolution, options.video_fps,
                               detector=self.face_detector, clock=clock, progress=progress, device=self.device,
                               occlusion=options.occlusion, prepared=faces)
        with clock.measure("speaker"):  # only `speaker` does work here: a pass over downscaled frames
            chosen = resolve_face_choice(options.face_choice, options.face_index, options.face_position, video_path,
                                         self.face_detector, options.video_fps, int(plan.schedule.max()) + 1,
                                         progress)
        return ChunkSource(video_path, plan.schedule, options.num_frames, plan.resolution, options.video_fps,
                           detector=self.face_detector, clock=clock, progress=progress, device=self.device,
                           face_choice=chosen, occlusion=options.occlusion, mask_folder=plan.spill_parent)

    # ---------------------------------------------------------------------------------------- reuse across runs

    def look_up(self, video_path: str, options: SamplingOptions, cache: EntryCache | None, spill_parent: str | None):
        """(key, prepared video or None) in the reuse cache (its occluder masks kept in `spill_parent`); (None, None)
        without one."""
        if cache is None:
            return None, None
        config = self.faces_config
        key = prepared_key(video_path, fps=options.video_fps, resolution=options.resolution, faces_config=config,
                           backend=self.face_detector.name if self.face_detector is not None else config.detector.backend,
                           choice=[options.face_choice, options.face_index, options.face_position],
                           occlusion=options.occlusion, vae=self.vae, encode_frames_per_call=self.encode_frames_per_call,
                           mask_image_path=options.mask_image_path)
        return key, load_prepared(cache, key, spill_parent)

    def start_moments(self, plan: RunPlan, options: SamplingOptions, prepared: PreparedVideo | None,
                      cache: EntryCache | None, key: str | None) -> None:
        """The run's moment store: it recalls a prepared video's moments and, with a reuse cache, records every
        crop's for the next run (in shards, as they come)."""
        if not (options.reuse_moments or cache is not None):
            return
        recorder = MomentsRecorder(cache, key, self.cache_shard_bytes) if cache is not None else None
        plan.moments = FrameMoments(self.reuse_memory_bytes, plan.spill_parent or tempfile.gettempdir(),
                                    prepared=prepared.moments if prepared is not None else None, recorder=recorder)

    @staticmethod
    def keep_prepared(cache: EntryCache, key: str, source: ChunkSource, plan: RunPlan,
                      faces: PreparedFaces | None) -> None:
        """Write what this run computed from the video alone (its face pass, or the replayed one, and the index of
        every crop's moments, after their last shard), unless it all came from the cache."""
        if faces is not None and plan.moments.encoded == 0:
            return
        recorder = plan.moments.recorder
        index = recorder.finish()
        faces = faces if faces is not None else source.prepared()
        if faces is not None:
            store_prepared(cache, key, faces, index, recorder.shard_bytes)

    # ---------------------------------------------------------------------------------------- 3. per chunk

    def edit_and_write(self, source: ChunkSource, plan: RunPlan, options: SamplingOptions, generator, clock,
                       progress, audio_path: str, video_out_path: str) -> int:
        """Stage 3: every chunk edited here while the next is prepared and the last restored and written in
        threads (`streaming.py`). Returns the number of edited frames."""
        num_chunks = -(-plan.num_output // options.num_frames)
        steps_bar = progress.stage("denoising", num_chunks * options.num_inference_steps, unit="step")
        writing_bar = progress.stage("writing", plan.num_output)
        seconds, edited = plan.num_output / options.video_fps, 0
        with VideoWriter(video_out_path, options.video_fps, audio_path=audio_path, audio_duration=seconds,
                         like=plan.video) as writer, \
                debug_writer(options.debug_video_path, options.video_fps, audio_path, seconds, plan.video) as overlay:
            finish = FrameFinisher(source.track, overlay=overlay, cuts=source.cuts, keep_mask=plan.mask[0].numpy())
            prefetch = Prefetcher(partial(self.prepared_chunks, source, plan, clock), depth=1, name="latentsync-decode")
            drain = Drain(partial(restore_and_write, finish, writer, clock, writing_bar), depth=1,
                          name="latentsync-write")
            try:
                for chunk, prepared in prefetch:
                    decoded = None
                    if prepared is not None:
                        decoded = self.edit_chunk(chunk, *prepared, plan, options, generator, clock, steps_bar.update)
                        edited += len(decoded)
                    else:
                        steps_bar.update(options.num_inference_steps)
                    drain.submit((chunk, decoded))
                    release_freed_memory()  # the chunk's steps reused their blocks; now they go back
                drain.finish()
            except BaseException:
                drain.abandon()
                raise
            finally:
                prefetch.close()
        steps_bar.close()
        writing_bar.close()
        return edited

    def prepared_chunks(self, source: ChunkSource, plan: RunPlan, clock) -> Iterator[tuple[Chunk, tuple | None]]:
        """Producer thread: decode + align (the face pass), then the reference and masked pixels of each chunk."""
        for chunk in source:
            prepared = None
            if chunk.faces is not None:
                with clock.measure("prepare"):
                    pixels, masked, _ = masked_images(chunk.faces, plan.mask)
                prepared = (pixels, masked)
            yield chunk, prepared

    def edit_chunk(self, chunk: Chunk, pixels: torch.Tensor, masked: torch.Tensor, plan: RunPlan,
                   options: SamplingOptions, generator, clock, on_step) -> torch.Tensor:
        """One chunk's faces: encode -> denoise -> decode -> blend the kept reference pixels back."""
        with clock.measure("vae"):
            moments = self.chunk_moments(chunk, pixels, masked, plan)
            scaling, shift = vae_factors(self.vae)  # the posterior sampled per output frame, masked first (official)
            masked_latents = sample_latents(moments[:, 0], generator, scaling, shift).to(plan.dtype)
            ref_latents = sample_latents(moments[:, 1], generator, scaling, shift).to(plan.dtype)
        with clock.measure("denoise"):
            count = len(pixels)
            latents = denoise(self.unet, self.scheduler, plan.noise.expand(-1, -1, count, -1, -1).clone(),
                              plan.mask_latent.expand(-1, -1, count, -1, -1), masked_latents, ref_latents,
                              self.audio_embeddings(chunk, plan, options),
                              num_inference_steps=options.num_inference_steps,
                              guidance_scale=options.guidance_scale, generator=generator, eta=options.eta,
                              guided_steps=plan.guided_steps, on_step=on_step)
        with clock.measure("vae"):
            # stays on the model's device: on CUDA the paste-back runs there too (as the official)
            decoded = decode_latents(self.vae, latents, frames_per_call=self.vae_frames_per_call).float()
            keep = plan.keep.to(decoded.device)
            return decoded * (1 - keep) + pixels.to(decoded.device).float() * keep

    def chunk_moments(self, chunk: Chunk, pixels: torch.Tensor, masked: torch.Tensor, plan: RunPlan) -> torch.Tensor:
        """(n, 2, 2, 4, h, w) posterior moments of the chunk's edited frames ([masked, reference] x [mean, std]).

        A crop encoded earlier in the run (the same source frame shown again, or a frame duplicated by a frame-rate
        change) is taken from `plan.moments` instead of encoded again, and let go after the last output frame that
        shows it. Without the store every frame is encoded, with the same numbers (one frame per encoder call)."""
        store = plan.moments
        if store is None:
            return self.encode_moments(pixels, masked)
        keys = [crop_key(face) for face in chunk.faces]
        first_rows: dict[str, int] = {}
        for row, key in enumerate(keys):
            first_rows.setdefault(key, row)
        new = {key: row for key, row in first_rows.items() if not store.recall(key)}
        if new:
            rows = list(new.values())
            for key, moments in zip(new, self.encode_moments(pixels[rows], masked[rows]), strict=True):
                store.put(key, moments)
        gathered = torch.stack([store.get(key) for key in keys]).to(next(self.vae.parameters()).device)
        release_after_last_use(store, plan, chunk.source_indices[chunk.has_face].tolist(), keys,
                               int(chunk.output_indices[-1]))
        return gathered

    def encode_moments(self, pixels: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """(n, 2, 2, 4, h, w): the masked and the reference images' posterior moments, one frame per encoder call."""
        per_call = self.encode_frames_per_call
        return torch.stack([posterior_moments(self.vae, masked, frames_per_call=per_call),
                            posterior_moments(self.vae, pixels, frames_per_call=per_call)], dim=1)

    def audio_embeddings(self, chunk: Chunk, plan: RunPlan, options: SamplingOptions) -> torch.Tensor | None:
        """The Whisper windows of the chunk's edited frames (None for a U-Net without audio layers)."""
        if not self.unet.add_audio_layer:
            return None
        out_faced = chunk.output_indices[chunk.has_face]
        feature_idx = frame_feature_indices(len(plan.features), out_faced, options.video_fps,
                                            self.audio_encoder.audio_feat_length)
        return gather_frames(plan.features, feature_idx).to(self.device, plan.dtype)

    # ---------------------------------------------------------------------------------------- 4. result

    @staticmethod
    def result(video_out_path: str, source: ChunkSource, plan: RunPlan, edited: int, fps: float,
               timings: dict[str, float]) -> LipsyncResult:
        track, schedule = source.track, plan.schedule
        occluded = np.isin(schedule, track.occluders.indices()) & track.has_face[schedule]
        shots = len(set(source.processor.cuts) & set(schedule.tolist())) + 1
        return LipsyncResult(Path(video_out_path), plan.num_output, edited, int(track.bridged[schedule].sum()),
                             float(fps), timings, num_shots=shots, frames_with_occluder=int(occluded.sum()),
                             face_choice=source.choice_report)


def spill_folder_of(cache: EntryCache) -> str | None:
    """Where `prepare` (no output file) spills what it keeps: the cache's own folder, its output, on disk where the
    user put it (TMPDIR may be memory on a tmpfs); None (TMPDIR) when that folder cannot be made."""
    try:
        cache.directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return str(cache.directory)


def usable_faces(prepared: PreparedVideo | None, plan: RunPlan) -> PreparedFaces | None:
    """The prepared face pass when it covers every source frame this run shows (a run with a longer audio than the
    one that prepared the video does the face pass again, and keeps the longer one); its moments serve either way,
    since they are found by crop content."""
    if prepared is None or prepared.faces.num_frames < int(plan.schedule.max()) + 1:
        return None
    return prepared.faces


def release_after_last_use(store: FrameMoments, plan: RunPlan, sources: list[int], keys: list[str], end: int) -> None:
    """Let a crop's moments go once no source frame showing that crop is shown after output frame `end`."""
    for source, key in zip(sources, keys, strict=True):
        plan.showing.setdefault(key, set()).add(source)
    for key in set(keys):
        plan.showing[key] = {source for source in plan.showing[key] if plan.last_use[source] > end}
        if not plan.showing[key]:
            del plan.showing[key]
            store.release(key)


def restore_and_write(finish: FrameFinisher, writer: VideoWriter, clock: StageClock, bar, item) -> None:
    """Consumer thread: paste the generated faces back (occluders, fades), then encode the frames."""
    chunk, decoded = item
    with clock.measure("restore"):
        frames = finish(chunk, decoded)
    with clock.measure("write"):
        writer.write(frames)
    bar.update(len(chunk.frames))
