"""Step 5: align the face of every frame to the LatentSync template (256 or 512 px), with the inference
aligner (latentsync.faces.video), and drop clips whose face is missing or jumps.

The official step dropped a clip when any frame had no face. Here the allowed share of face-less frames,
and how far the face may move or change size from one frame to the next, are settings; the reason and
the measured values are recorded.
"""

from __future__ import annotations

import numpy as np

from data_processing.clips import write_frames
from data_processing.steps.base import Drop, Outcome, Step, WorkItem


class FaceMotion:
    """Largest frame-to-frame move of the face box centre (in face sizes) and relative size change."""

    def __init__(self):
        self.previous = None
        self.max_jitter = 0.0
        self.max_scale_change = 0.0
        self.sizes = []

    def update(self, box) -> None:
        x1, y1, x2, y2 = (float(v) for v in box)
        size = max(x2 - x1, y2 - y1)
        centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        self.sizes.append(size)
        if self.previous is not None:
            prev_centre, prev_size = self.previous
            scale = max(prev_size, 1e-6)
            self.max_jitter = max(self.max_jitter, float(np.linalg.norm(centre - prev_centre)) / scale)
            self.max_scale_change = max(self.max_scale_change, abs(size - prev_size) / scale)
        self.previous = (centre, size)

    def reset(self) -> None:
        """A face-less frame breaks the chain: motion is measured between consecutive faces only."""
        self.previous = None


def load_face_detector(cfg, device: str):
    from latentsync.faces.detector import FaceDetector
    from latentsync.faces.settings import load_faces_config

    return FaceDetector(device=device, config=load_faces_config(cfg.affine.faces_config))


class AlignFaces(Step):
    name = "affine"

    @classmethod
    def check_requirements(cls, cfg) -> None:
        detector = load_face_detector(cfg, "cpu")  # raises FaceModelNotFoundError with instructions
        detector.close()

    def setup(self) -> None:
        from data_processing.models import device_for

        self.device = device_for(self.cfg, self.worker_index)
        self.detector = load_face_detector(self.cfg, self.device)

    def process(self, item: WorkItem) -> Outcome:
        from latentsync.faces.video import VideoFaceProcessor
        from latentsync.utils.media import VideoReader, read_audio

        settings = self.cfg.affine
        fps, rate = self.cfg.resample.fps, self.cfg.resample.sample_rate
        reader = VideoReader(item.input_path, target_fps=fps)
        total = len(reader)
        allowed_missing = int(np.floor(settings.max_missing_face_fraction * total + 1e-9))
        processor = VideoFaceProcessor(resolution=settings.resolution, detector=self.detector, device=self.device)
        motion = FaceMotion()
        track_ids = set()

        def aligned_chunks():
            batch = []
            for face in aligned_faces():
                batch.append(face)
                if len(batch) == self.cfg.runtime.chunk_size:
                    yield np.stack(batch)
                    batch = []
            if batch:
                yield np.stack(batch)

        def aligned_faces():
            missing = 0
            for aligned in processor.process(reader.iter_chunks(self.cfg.runtime.chunk_size)):
                if not aligned.has_face:
                    missing += 1
                    motion.reset()
                    if missing > allowed_missing:
                        raise Drop("face_missing", f"no face in frame {aligned.index} (more than {allowed_missing} "
                                   f"of {total} frames without a face)", duration=total / fps, first_missing=aligned.index)
                    continue
                track_ids.add(aligned.track_id)
                if len(track_ids) > 1:
                    raise Drop("face_changed", f"the tracked face changes at frame {aligned.index}", duration=total / fps)
                motion.update(aligned.face_box)
                if motion.max_jitter > settings.max_face_jitter or motion.max_scale_change > settings.max_face_scale_change:
                    raise Drop("face_unstable", f"face jumps at frame {aligned.index}: move {motion.max_jitter:.2f} "
                               f"(max {settings.max_face_jitter}), size change {motion.max_scale_change:.2f} "
                               f"(max {settings.max_face_scale_change}) in face sizes", duration=total / fps)
                yield aligned.face.permute(1, 2, 0).numpy()

        audio = read_audio(item.input_path, rate)
        out = item.scratch("aligned.mp4")
        write_frames(aligned_chunks(), fps, audio, rate, out, self.cfg.encoding)
        stats = processor.stats
        return Outcome.kept({item.item: out}, duration=total / fps, frames=total, frames_without_face=stats.without_face,
                            frames_bridged=stats.bridged, face_size=round(float(np.median(motion.sizes)), 2),
                            max_face_jitter=round(motion.max_jitter, 4),
                            max_face_scale_change=round(motion.max_scale_change, 4))
