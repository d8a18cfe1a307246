"""The pipeline's options as one frozen record, checked when it is made (as openai/whisper's DecodingOptions).

`LipsyncPipeline.run(video, audio, out, SamplingOptions(...))` takes it; the official keyword call
`pipeline(video_path, audio_path, video_out_path, num_frames=16, ...)` builds one from its keywords, so a misspelled
keyword is a TypeError there too. The API builds it from `LipsyncOptions` and the U-Net config
(`LipsyncOptions.sampling_options`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from latentsync.pipelines.frame_schedule import check_length_mode
from latentsync.validation import check_face_options, check_occlusion, check_run_options


@dataclass(frozen=True)
class SamplingOptions:
    """Everything a run needs besides its files, the models and the random generator."""

    num_frames: int = 16  # frames per chunk: the U-Net's clip length
    video_fps: int = 25  # the output's frame rate; the source is resampled to it by timestamps
    audio_sample_rate: int = 16000
    resolution: int | None = None  # aligned face size in pixels; None: the U-Net's sample size x the VAE factor
    num_inference_steps: int = 20
    guidance_scale: float = 1.5
    guidance_fraction: float = 1.0  # share of the steps, from the first, with classifier-free guidance (1 = all)
    guided_steps: int | None = None  # the count itself, when the caller computed it (None: from guidance_fraction)
    eta: float = 0.0
    weight_dtype: torch.dtype | None = None  # None: the U-Net's dtype
    mask_image_path: str | None = None  # None: the official mask drawn from configs/faces.yaml
    length_mode: str = "pingpong"  # pingpong | loop | cut_to_shortest | silence (frame_schedule.py)
    face_choice: str | None = None  # largest | tracked | speaker | index | position; None: configs/faces.yaml
    face_index: int | None = None
    face_position: tuple[float, float] | None = None
    occlusion: str | None = None  # auto | hands | off: keep what covers the mouth; None: configs/faces.yaml
    debug_video_path: str | None = None  # also write a companion video with the face pass's decisions drawn on
    reuse_moments: bool = True  # a source frame shown again is not encoded again (same output; False: for tests)

    def __post_init__(self):
        check_run_options(self.num_inference_steps, self.guidance_scale, 0, self.guidance_fraction)
        check_length_mode(self.length_mode)
        choice, index, position = check_face_options(self.face_choice, self.face_index, self.face_position)
        self._set(face_choice=choice, face_index=index, face_position=position, occlusion=check_occlusion(self.occlusion))
        if self.resolution is not None and (self.resolution <= 0 or self.resolution % 8):
            raise ValueError(f"resolution must be a positive multiple of 8, got {self.resolution}")

    def _set(self, **values) -> None:
        """Normalised values written once, while the record is being made."""
        for name, value in values.items():
            object.__setattr__(self, name, value)
