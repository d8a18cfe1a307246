"""Step 7: keep clips of good visual quality: HyperIQA (eval/hyper_iqa.py, the KonIQ-10k checkpoint) on the
first, middle and last frame, mean score >= quality.min_score (40). Optionally also drop clips whose face
was small in the source video (quality.min_face_size, from the alignment step's manifest), since an
upscaled small face looks soft after alignment."""

from __future__ import annotations

import shutil

from data_processing import models
from data_processing.manifest import read_manifest
from data_processing.steps.base import Drop, Outcome, Step, WorkItem


def load_hyperiqa(checkpoint, device: str):
    from eval.hyper_iqa import HyperIQAScorer

    return HyperIQAScorer(checkpoint, device=device)


class QualityFilter(Step):
    name = "quality"

    @classmethod
    def check_requirements(cls, cfg) -> None:
        models.check_available(cfg, "hyperiqa")

    def setup(self) -> None:
        self.scorer = models.build(self.cfg, "hyperiqa", load_hyperiqa, models.device_for(self.cfg, self.worker_index))
        self._face_sizes = None

    def face_size(self, item: WorkItem) -> float | None:
        """Median source face size (pixels) measured by the alignment step for this clip, if recorded."""
        if self._face_sizes is None:
            records = read_manifest(self.layout.manifest_dir("affine")) if self.layout is not None else {}
            self._face_sizes = {k: r["scores"].get("face_size") for k, r in records.items() if r["status"] == "kept"}
        return self._face_sizes.get(item.item)

    def process(self, item: WorkItem) -> Outcome:
        from eval.hyper_iqa import quality_frame_indices
        from latentsync.utils.media import VideoReader

        reader = VideoReader(item.input_path)
        duration = len(reader) / reader.fps
        score = float(self.scorer.score_frames(reader.get_frames(quality_frame_indices(len(reader)))))
        scores = {"quality": round(score, 4)}
        min_face = self.cfg.quality.min_face_size
        if min_face is not None:
            size = self.face_size(item)
            scores["face_size"] = size
            if size is None:
                raise Drop("face_size_unknown", "no face size recorded by the alignment step for this clip "
                           "(needed by quality.min_face_size)", duration=duration, **scores)
            if size < min_face:
                raise Drop("low_resolution", f"source face {size:.0f} px < {min_face:g} px", duration=duration, **scores)
        if score < self.cfg.quality.min_score:
            raise Drop("low_quality", f"HyperIQA score {score:.2f} < {self.cfg.quality.min_score}", duration=duration,
                       **scores)
        out = item.scratch("clip.mp4")
        shutil.copyfile(item.input_path, out)
        return Outcome.kept({item.item: out}, duration=duration, **scores)
