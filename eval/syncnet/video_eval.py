"""Sync scores of whole videos: every face track is scored, then averaged (the LatentSync protocol).

Used by eval/eval_sync_conf.py, the data pipeline's sync filter and eval/inference_videos.py.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import fmean

from eval.settings import SyncFilterRule, SyncNetProtocol, TrackingSettings, checkpoint_path, load_eval_config
from eval.syncnet.face_tracks import FaceTrackExtractor, TrackClip
from eval.syncnet.syncnet_eval import SyncNetEval


@dataclass
class VideoSyncResult:
    """Per-video scores. `av_offset` is int(mean of track offsets) (truncated toward 0, as the original);
    `lse_c` / `lse_d` are means over tracks of the confidence and of the minimum mean distance."""

    video: str
    av_offset: int
    lse_c: float
    lse_d: float
    num_tracks: int
    detector: str
    tracks: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate_clips(syncnet: SyncNetEval, clips: list[TrackClip], video: str, detector: str) -> VideoSyncResult:
    """Score already extracted face-track clips of one video and average over tracks."""
    tracks = []
    for clip in clips:
        scores = syncnet.evaluate_arrays(clip.crops_bgr, clip.audio_int16)
        tracks.append({"start_frame": clip.track.start, "end_frame": clip.track.end, **scores.as_dict()})
    return VideoSyncResult(
        video=video,
        av_offset=math.trunc(fmean(t["av_offset"] for t in tracks)),
        lse_c=fmean(t["lse_c"] for t in tracks),
        lse_d=fmean(t["lse_d"] for t in tracks),
        num_tracks=len(tracks),
        detector=detector,
        tracks=tracks,
    )


def evaluate_video(syncnet: SyncNetEval, extractor: FaceTrackExtractor, video_path: str | Path) -> VideoSyncResult:
    """Score every face track of one video and average. Raises SyncEvalError subclasses with the reason."""
    detector = getattr(extractor.detector, "name", type(extractor.detector).__name__)
    return evaluate_clips(syncnet, extractor(video_path), str(video_path), detector)


def passes_sync_filter(result: VideoSyncResult, cfg=None) -> bool:
    """The data pipeline's rule: confidence >= sync_filter.min_confidence and |offset| <= max_abs_offset."""
    rule = SyncFilterRule.from_eval_config(cfg)
    return result.lse_c >= rule.min_confidence and abs(result.av_offset) <= rule.max_abs_offset


class SyncEvaluator:
    """SyncNet + face tracker built once and reused over many videos: `evaluator(video) -> VideoSyncResult`."""

    def __init__(self, syncnet: SyncNetEval, extractor: FaceTrackExtractor):
        self.syncnet = syncnet
        self.extractor = extractor

    @classmethod
    def from_config(
        cls,
        cfg=None,
        syncnet_checkpoint: str | Path | None = None,
        detector: str | None = None,
        device: str = "cpu",
        width_divisor: int = 1,
        load_weights: bool = True,
    ) -> SyncEvaluator:
        """Build from configs/eval.yaml. `load_weights=False` keeps random weights (tests, smoke runs)."""
        from eval.detectors import make_face_detector

        cfg = load_eval_config() if cfg is None else cfg
        protocol = SyncNetProtocol.from_eval_config(cfg)
        settings = TrackingSettings.from_eval_config(cfg)
        syncnet = SyncNetEval(num_layers_in_fc_layers=protocol.fc_dim, device=device, width_divisor=width_divisor,
                              protocol=protocol)
        if load_weights:
            syncnet.loadParameters(syncnet_checkpoint or checkpoint_path("syncnet", cfg))
        face_detector = make_face_detector(settings, checkpoint_path("s3fd", cfg), device=device, kind=detector)
        return cls(syncnet, FaceTrackExtractor(face_detector, settings, protocol))

    def __call__(self, video_path: str | Path) -> VideoSyncResult:
        return evaluate_video(self.syncnet, self.extractor, video_path)
