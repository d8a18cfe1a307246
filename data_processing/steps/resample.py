"""Step 2: every video to 25 fps with 16 kHz mono audio (what the SyncNet, Whisper and training expect).

A video already on the 25 fps grid in H.264 keeps its video stream (no re-encode); others are converted by
presentation time with `latentsync.utils.media.frame_map` (ffmpeg's `fps` filter rule, variable frame rates and
start offsets included), the same rule inference uses, so training and inference see frames sampled the same way.
"""

from __future__ import annotations

from pathlib import Path

from data_processing.clips import can_keep_video_stream, replace_audio, write_clip
from data_processing.steps.base import Outcome, Step, WorkItem
from latentsync.utils.media import VideoReader, read_audio


def output_name(item: WorkItem) -> str:
    """Same name with .mp4; other containers keep their extension in the stem so names cannot collide."""
    extension = Path(item.item).suffix.lower()
    return item.output_name() if extension == ".mp4" else item.output_name(suffix=f"_{extension[1:]}")


class Resample(Step):
    name = "resample"

    def process(self, item: WorkItem) -> Outcome:
        fps, rate = self.cfg.resample.fps, self.cfg.resample.sample_rate
        reader = VideoReader(item.input_path, target_fps=fps)
        audio = read_audio(item.input_path, sample_rate=rate)
        out = item.scratch("resampled.mp4")
        source_fps = reader.info.fps
        # Only a stream whose frames already sit on the 25 fps grid from t = 0 is kept as it is; a variable frame
        # rate or a late video start is converted by presentation time, an interlaced one deinterlaced.
        copy_video = can_keep_video_stream(reader, 0, len(reader))
        if copy_video:
            replace_audio(item.input_path, audio, rate, out, self.cfg.encoding)
        else:
            write_clip(reader, 0, len(reader), audio, rate, out, self.cfg.encoding, self.cfg.runtime.chunk_size)
        return Outcome.kept({output_name(item): out}, duration=reader.info.duration, source_fps=round(source_fps, 4),
                            frames=len(reader), video_copied=copy_video)
