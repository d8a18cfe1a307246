"""Step 4: cut shots into clips of min..max seconds (5-10 s): shorter shots are dropped, longer ones are
split into the fewest equal parts that fit (the official ffmpeg segmenter cut at keyframes instead)."""

from __future__ import annotations

import math

from data_processing.clips import write_clip
from data_processing.steps.base import Drop, Outcome, Step, WorkItem
from latentsync.utils.media import VideoReader, read_audio


def segment_ranges(num_frames: int, min_frames: int, max_frames: int) -> list[tuple[int, int]]:
    """Equal parts of `num_frames`, each within [min_frames, max_frames] (needs max >= 2 * min - 1)."""
    if num_frames < min_frames:
        return []
    parts = math.ceil(num_frames / max_frames)
    base, extra = divmod(num_frames, parts)
    ranges, start = [], 0
    for index in range(parts):
        length = base + (1 if index < extra else 0)
        ranges.append((start, start + length))
        start += length
    return ranges


class Segment(Step):
    name = "segment"

    def process(self, item: WorkItem) -> Outcome:
        fps, rate = self.cfg.resample.fps, self.cfg.resample.sample_rate
        reader = VideoReader(item.input_path, target_fps=fps)
        min_frames = math.ceil(self.cfg.segment.min_seconds * fps - 1e-6)
        max_frames = math.floor(self.cfg.segment.max_seconds * fps + 1e-6)
        ranges = segment_ranges(len(reader), min_frames, max_frames)
        if not ranges:
            raise Drop("too_short", f"shot lasts {len(reader) / fps:.2f} s, less than {self.cfg.segment.min_seconds} s",
                       duration=len(reader) / fps, frames=len(reader))
        audio = read_audio(item.input_path, sample_rate=rate)
        outputs = {}
        for index, (start, end) in enumerate(ranges):
            out = item.scratch(f"segment_{index:03d}.mp4")
            write_clip(reader, start, end, audio, rate, out, self.cfg.encoding, self.cfg.runtime.chunk_size)
            outputs[item.output_name(suffix=f"_{index:03d}")] = out
        return Outcome.kept(outputs, duration=len(reader) / fps, segment_frames=[e - s for s, e in ranges])
