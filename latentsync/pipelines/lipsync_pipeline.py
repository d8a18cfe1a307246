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
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from latentsync.config import vae_frames_per_call
from latentsync.faces.choice import tracker_settings
from latentsync.faces.detector import load_faces_config
from latentsync.pipelines.chunk_source import ChunkSource, NoFaceError
from latentsync.pipelines.conditioning import (
    decode_latents,
    encode_latents,
    load_fixed_mask,
    mask_to_latent,
    masked_images,
)
from latentsync.pipelines.frame_finisher import FrameFinisher
from latentsync.pipelines.frame_schedule import num_output_frames, source_frame_indices
from latentsync.pipelines.sampling import denoise, guided_step_count
from latentsync.pipelines.streaming import Drain, Prefetcher, StageClock
from latentsync.utils.allocator import release_freed_memory
from latentsync.utils.media import MediaError, VideoWriter, frame_map, probe_video, read_audio
from latentsync.utils.progress import RunProgress
from latentsync.whisper.audio2feature import frame_feature_indices, gather_frames

logger = logging.getLogger(__name__)

__all__ = ["LipsyncPipeline", "LipsyncResult", "NoFaceError"]


@contextlib.contextmanager
def debug_writer(path: str | None, fps: float, audio_path: str, seconds: float):
    """The `--debug_video` companion's writer (None when not asked for); written atomically like the output."""
    if path is None:
        yield None
        return
    with VideoWriter(path, fps, audio_path=audio_path, audio_duration=seconds, crf=23, preset="veryfast") as writer:
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

    def summary(self) -> str:
        busy = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds_per_stage.items() if k != "wall")
        wall = self.seconds_per_stage.get("wall")
        shots = f"{self.num_shots} shots, " if self.num_shots > 1 else ""
        occluded = f", an occluder kept in {self.frames_with_occluder}" if self.frames_with_occluder else ""
        return (f"{self.output_path}: {self.num_frames} frames at {self.fps:g} fps, {shots}face in "
                f"{self.frames_with_face} ({self.frames_bridged} bridged{occluded}), "
                f"{self.num_frames - self.frames_with_face} passed through unchanged; busy time per stage "
                f"(stages overlap): {busy}" + (f"; wall {wall:.1f}s" if wall is not None else ""))


class LipsyncPipeline:
    """`LipsyncPipeline(vae, audio_encoder, unet, scheduler)(video_path, audio_path, video_out_path, ...)`."""

    def __init__(self, vae, audio_encoder, unet, scheduler, face_detector=None):
        self.vae = vae
        self.audio_encoder = audio_encoder
        self.unet = unet
        self.scheduler = scheduler
        self.face_detector = face_detector  # None: the default detector (built on first use)
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.deepcache = None  # the DeepCache helper, when latentsync.pipelines.deepcache.enable_deepcache() is on

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def to(self, device) -> LipsyncPipeline:
        self.vae.to(device)
        self.unet.to(device)
        return self

    # ---------------------------------------------------------------------------------------- call

    @torch.no_grad()
    def __call__(self, video_path: str, audio_path: str, video_out_path: str, num_frames: int = 16,
                 video_fps: int = 25, audio_sample_rate: int = 16000, height: int | None = None,
                 width: int | None = None, num_inference_steps: int = 20, guidance_scale: float = 1.5,
                 guidance_fraction: float = 1.0, weight_dtype: torch.dtype | None = None, eta: float = 0.0,
                 mask_image_path: str | None = None,
                 temp_dir: str | None = None, generator: torch.Generator | None = None,
                 length_mode: str = "pingpong", progress=True, face_choice: str | None = None,
                 face_index: int | None = None, face_position=None, occlusion: str | None = None,
                 debug_video_path: str | None = None, callback=None, callback_steps: int = 1) -> LipsyncResult:
        """`progress`: console bars (bool) or a `RunProgress` (bars and/or a callback). `face_choice`: which face
        to edit (None: configs/faces.yaml), with `face_index` / `face_position` (x, y) where it needs them.
        `guidance_fraction`: share of the steps, from the first, with classifier-free guidance (1 = all).
        `occlusion`: auto | hands | off (None: configs/faces.yaml): keep the original pixels where something covers
        the mouth. `debug_video_path`: also write a companion video with the face pass's decisions drawn on.
        `callback` / `callback_steps`: the official signature's per-step hook, not supported (pass a `RunProgress`
        with a callback as `progress`); any other unknown keyword is a TypeError, so a misspelled option is never
        silently ignored."""
        if callback is not None:
            raise TypeError("LipsyncPipeline does not call `callback`; pass progress=RunProgress(True, callback) to "
                            "get (stage, done, total) reports instead")
        height = height or self.unet.config.sample_size * self.vae_scale_factor
        width = width or height
        if height != width or height % 8:
            raise ValueError(f"resolution must be square and a multiple of 8, got {height}x{width}")
        was_training = self.unet.training
        self.unet.eval()
        device = self.device
        progress = RunProgress.of(progress)

        clock = StageClock()
        with clock.measure("audio"):
            audio = read_audio(audio_path, audio_sample_rate)
            audio_seconds = len(audio) / audio_sample_rate
            if audio_seconds < 1.0 / video_fps:
                raise MediaError(f"audio is shorter than one video frame ({audio_seconds:.3f} s): {audio_path}")

        info = probe_video(video_path)
        n_video = len(frame_map(video_path, video_fps, info.num_frames, info.fps))
        n_out = num_output_frames(audio_seconds, n_video, video_fps, length_mode)
        schedule = source_frame_indices(n_out, n_video, length_mode)
        logger.info("video %s: %d frames at %.3g fps -> %d output frames at %d fps (%s)", video_path,
                    info.num_frames, info.fps, n_out, video_fps, length_mode)
        with clock.measure("audio"):
            if length_mode == "silence":  # the video outlasts the audio: the mouth follows silence to its end
                audio = np.pad(audio, (0, max(0, round(n_out / video_fps * audio_sample_rate) - len(audio))))
            features = self.audio_encoder.audio2feat(audio)  # the decoded 16 kHz samples: no second decode

        with clock.measure("speaker"):  # only `speaker` does work here: a pass over downscaled frames
            face_settings = tracker_settings(face_choice, face_index, face_position, video_path, self.face_detector,
                                             video_fps, int(schedule.max()) + 1, progress)
        faces_config = self.face_detector.config if self.face_detector is not None else load_faces_config()
        mask = load_fixed_mask(height, mask_image_path or None, fixed_mask=faces_config.fixed_mask)
        source = ChunkSource(video_path, schedule, num_frames, height, video_fps, detector=self.face_detector,
                             clock=clock, progress=progress, device=device, face_choice=face_settings,
                             fade_frames=int(faces_config.blend.fade_frames), occlusion=occlusion)

        self.scheduler.set_timesteps(num_inference_steps, device=device)  # for init_noise_sigma
        guided_steps = guided_step_count(num_inference_steps, guidance_fraction,
                                         self.deepcache.params["cache_interval"] if self.deepcache else None)
        latent_hw = height // self.vae_scale_factor
        noise = torch.randn((1, self.vae.config.latent_channels, 1, latent_hw, latent_hw), generator=generator,
                            device=generator.device if generator is not None else "cpu", dtype=torch.float32)
        noise = (noise * self.scheduler.init_noise_sigma).to(device, weight_dtype or self.unet.dtype)
        dtype = noise.dtype
        mask_latent = mask_to_latent(mask[0:1][None], (latent_hw, latent_hw)).to(device, dtype)  # (1, 1, 1, h, w)
        keep = mask[0:1].float()  # 1 = keep the reference pixel, 0 = generated mouth region

        def prepared_chunks():
            """Producer thread: decode + align (the face pass), then the masked and reference pixels."""
            for chunk in source:
                prepared = None
                if chunk.faces is not None:
                    with clock.measure("prepare"):
                        pixels, masked, _ = masked_images(chunk.faces, mask)
                    prepared = (pixels, masked)
                yield chunk, prepared

        num_chunks = -(-n_out // num_frames)
        steps_bar = progress.stage("denoising", num_chunks * num_inference_steps, unit="step")
        writing_bar = progress.stage("writing", n_out)
        frames_with_face = 0
        wall_start = time.perf_counter()
        with VideoWriter(video_out_path, video_fps, audio_path=audio_path,
                         audio_duration=n_out / video_fps) as writer, \
                debug_writer(debug_video_path, video_fps, audio_path, n_out / video_fps) as overlay:
            finish = FrameFinisher(source.track, overlay=overlay, cuts=source.cuts, keep_mask=mask[0].numpy())

            def restore_and_write(item):
                """Consumer thread: paste the generated faces back (occluders, fades), then encode."""
                chunk, decoded = item
                with clock.measure("restore"):
                    frames = finish(chunk, decoded)
                with clock.measure("write"):
                    writer.write(frames)
                writing_bar.update(len(chunk.frames))

            track = source.track
            prefetch = Prefetcher(prepared_chunks, depth=1, name="latentsync-decode")
            drain = Drain(restore_and_write, depth=1, name="latentsync-write")
            try:
                for chunk, prepared in prefetch:
                    if prepared is None:
                        steps_bar.update(num_inference_steps)
                        drain.submit((chunk, None))
                        continue
                    pixels, masked = prepared
                    count = len(pixels)
                    with clock.measure("vae"):
                        per_call = vae_frames_per_call()
                        masked_latents = encode_latents(self.vae, masked, generator, frames_per_call=per_call).to(dtype)
                        ref_latents = encode_latents(self.vae, pixels, generator, frames_per_call=per_call).to(dtype)
                    with clock.measure("denoise"):
                        audio_embeds = None
                        if self.unet.add_audio_layer:
                            out_faced = chunk.output_indices[chunk.has_face]
                            feature_idx = frame_feature_indices(len(features), out_faced, video_fps,
                                                                self.audio_encoder.audio_feat_length)
                            audio_embeds = gather_frames(features, feature_idx).to(device, dtype)
                        latents = denoise(self.unet, self.scheduler, noise.expand(-1, -1, count, -1, -1).clone(),
                                          mask_latent.expand(-1, -1, count, -1, -1), masked_latents, ref_latents,
                                          audio_embeds, num_inference_steps=num_inference_steps,
                                          guidance_scale=guidance_scale, generator=generator, eta=eta,
                                          guided_steps=guided_steps, on_step=steps_bar.update)
                    with clock.measure("vae"):
                        # stays on the model's device: on CUDA the paste-back runs there too (as the official)
                        decoded = decode_latents(self.vae, latents, frames_per_call=vae_frames_per_call()).float()
                        keep_here = keep.to(decoded.device)
                        decoded = decoded * (1 - keep_here) + pixels.to(decoded.device).float() * keep_here
                    frames_with_face += count
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
        if was_training:
            self.unet.train()
        timings = clock.as_dict()
        timings["wall"] = timings.get("audio", 0.0) + timings.get("speaker", 0.0) + time.perf_counter() - wall_start
        occluded = np.isin(schedule, list(track.occluders)) & track.has_face[schedule]
        shots = len(set(source.processor.cuts) & set(schedule.tolist())) + 1
        return LipsyncResult(Path(video_out_path), n_out, frames_with_face, int(track.bridged[schedule].sum()),
                             float(video_fps), timings, num_shots=shots, frames_with_occluder=int(occluded.sum()))

