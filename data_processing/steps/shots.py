"""Step 3: split each video into shots at scene cuts (PySceneDetect's adaptive detector, as the official
`scenedetect detect-adaptive --threshold 2 split-video`), with frame-exact cuts and their audio. The detection
itself lives in `latentsync.faces.shots` (inference restarts its face tracking at the same cuts).

A video with a single shot keeps its video stream (see `data_processing.clips.write_clip`)."""

from __future__ import annotations

from data_processing.clips import write_clip
from data_processing.steps.base import Outcome, Step, WorkItem
from latentsync.faces.shots import detect_cuts
from latentsync.utils.media import VideoReader, read_audio


def shot_ranges(cuts: list[tuple[int, int]], num_frames: int) -> list[tuple[int, int]]:
    """Shots covering the decoded frames: scenedetect's ranges clipped to our frame count (its backend may
    count a frame more or less), the whole video when there is no cut."""
    ranges = [(max(0, s), min(e, num_frames)) for s, e in cuts]
    ranges = [(s, e) for s, e in ranges if e > s]
    return ranges or [(0, num_frames)]


class SplitShots(Step):
    name = "shot"

    def process(self, item: WorkItem) -> Outcome:
        reader = VideoReader(item.input_path, target_fps=self.cfg.resample.fps)
        rate = self.cfg.resample.sample_rate
        audio = read_audio(item.input_path, sample_rate=rate)
        info = reader.info
        shots = shot_ranges(detect_cuts(item.input_path, self.cfg.shot, info.fps, info.width, info.height), len(reader))
        outputs = {}
        for number, (start, end) in enumerate(shots, start=1):
            out = item.scratch(f"shot_{number:03d}.mp4")
            write_clip(reader, start, end, audio, rate, out, self.cfg.encoding, self.cfg.runtime.chunk_size)
            outputs[item.output_name(suffix=f"_shot_{number:03d}")] = out
        return Outcome.kept(outputs, duration=reader.info.duration, num_shots=len(shots),
                            cuts=[start for start, _ in shots[1:]])
