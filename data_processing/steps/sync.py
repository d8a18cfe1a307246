"""Step 6: keep clips whose lips match their audio, and shift the audio so the SyncNet offset is 0.

Scoring is the evaluation code's (eval/syncnet): face tracks, SyncNet embeddings, the syncnet_python offset
search and confidence, and the filter rule `passes_sync_filter`. Only the thresholds come from this
pipeline's config. A kept clip with offset k gets its audio delayed by k frames (advanced when k < 0), the
same correction as the official `ffmpeg -itsoffset k/25`, while its video stream is copied untouched.
"""

from __future__ import annotations

import shutil

from data_processing import models
from data_processing.clips import replace_audio, shift_audio
from data_processing.steps.base import Drop, Outcome, Step, WorkItem, describe_error

TRACK_DETECTORS = ("s3fd", "auto", "latentsync", "mediapipe")


def eval_config(cfg):
    """configs/eval.yaml with this pipeline's thresholds and detector choice written in."""
    from eval.settings import load_eval_config

    return load_eval_config(overrides=[
        f"sync_filter.min_confidence={cfg.sync.min_confidence}",
        f"sync_filter.max_abs_offset={cfg.sync.max_abs_offset}",
        f"tracking.detector={cfg.sync.detector}",
        f"checkpoints.s3fd={models.resolve_path(cfg.models.face_detector.checkpoint)}",
    ])


def load_syncnet(checkpoint, device: str):
    from eval.settings import SyncNetProtocol
    from eval.syncnet.syncnet_eval import SyncNetEval

    syncnet = SyncNetEval(device=device, protocol=SyncNetProtocol.from_eval_config())
    syncnet.loadParameters(checkpoint)
    return syncnet


class SyncFilter(Step):
    name = "sync"

    @classmethod
    def check_requirements(cls, cfg) -> None:
        if cfg.sync.detector not in TRACK_DETECTORS:
            raise ValueError(f"sync.detector must be one of {TRACK_DETECTORS}, got {cfg.sync.detector!r}")
        models.check_available(cfg, "syncnet")
        if cfg.sync.crop == "track" and cfg.sync.detector == "s3fd":
            models.check_available(cfg, "face_detector")

    def setup(self) -> None:
        from eval.detectors import make_face_detector
        from eval.settings import SyncNetProtocol, TrackingSettings
        from eval.syncnet.face_tracks import FaceTrackExtractor
        from eval.syncnet.video_eval import SyncEvaluator

        device = models.device_for(self.cfg, self.worker_index)
        self.eval_cfg = eval_config(self.cfg)
        self.syncnet = models.build(self.cfg, "syncnet", load_syncnet, device)
        if self.cfg.sync.crop == "track":
            settings = TrackingSettings.from_eval_config(self.eval_cfg)

            def load_detector(checkpoint, device_):
                return make_face_detector(settings, checkpoint, device=device_, kind=self.cfg.sync.detector)

            if models.factory_for(self.cfg, "face_detector") is not None or self.cfg.sync.detector == "s3fd":
                detector = models.build(self.cfg, "face_detector", load_detector, device)
            else:  # a fallback detector that needs no S3FD checkpoint
                detector = load_detector(models.resolve_path(self.cfg.models.face_detector.checkpoint), device)
            extractor = FaceTrackExtractor(detector, settings, SyncNetProtocol.from_eval_config(self.eval_cfg))
            self.evaluator = SyncEvaluator(self.syncnet, extractor)

    def score(self, path):
        """(av_offset, confidence, min_dist, number of face tracks, detector name) of one clip."""
        if self.cfg.sync.crop == "full_frame":
            offset, min_dist, conf = self.syncnet.evaluate(path)
            return offset, conf, min_dist, 1, "full_frame"
        result = self.evaluator(path)
        return result.av_offset, result.lse_c, result.lse_d, result.num_tracks, result.detector

    def process(self, item: WorkItem) -> Outcome:
        from eval.syncnet.face_tracks import SyncEvalError
        from eval.syncnet.video_eval import VideoSyncResult, passes_sync_filter
        from latentsync.utils.media import VideoReader, read_audio

        try:
            offset, conf, min_dist, tracks, detector = self.score(item.input_path)
        except SyncEvalError as exc:  # no usable face track (or shorter than one)
            raise Drop("no_face_track", describe_error(exc, item)) from None
        except ValueError as exc:  # e.g. too short for one SyncNet window
            raise Drop("sync_unscorable", describe_error(exc, item)) from None
        scores = {"av_offset": int(offset), "confidence": round(float(conf), 4), "min_dist": round(float(min_dist), 4),
                  "num_tracks": tracks}
        result = VideoSyncResult(str(item.input_path), int(offset), float(conf), float(min_dist), tracks, detector)
        if not passes_sync_filter(result, self.eval_cfg):
            if conf < self.cfg.sync.min_confidence:
                raise Drop("low_sync_confidence", f"SyncNet confidence {conf:.2f} < {self.cfg.sync.min_confidence}",
                           **scores)
            raise Drop("offset_out_of_range", f"audio-video offset {offset} frames, beyond "
                       f"±{self.cfg.sync.max_abs_offset}", **scores)
        out = item.scratch("synced.mp4")
        if offset == 0:
            shutil.copyfile(item.input_path, out)
        else:
            fps, rate = self.cfg.resample.fps, self.cfg.resample.sample_rate
            audio = shift_audio(read_audio(item.input_path, rate), int(offset), fps, rate)
            replace_audio(item.input_path, audio, rate, out, self.cfg.encoding)
        duration = len(VideoReader(item.input_path)) / self.cfg.resample.fps
        return Outcome.kept({item.item: out}, duration=duration, **scores)
