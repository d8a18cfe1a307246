"""Step 1: find videos that later steps cannot use (undecodable, no video or audio, zero length).

They are listed in the manifest with the reason. The input folder is never modified unless the user
asks for it with --delete_broken (the official script deleted them silently).
"""

from __future__ import annotations

import os

from data_processing.steps.base import Drop, Outcome, Step, WorkItem, describe_error
from latentsync.utils.media import MediaError, VideoReader, describe_streams, read_audio


class CheckBroken(Step):
    name = "broken"

    def process(self, item: WorkItem) -> Outcome:
        try:
            outcome = self._check(item)
        except Drop:
            if self.cfg.broken.delete:
                os.remove(item.input_path)
            raise
        return outcome

    def _check(self, item: WorkItem) -> Outcome:
        limits = self.cfg.broken
        try:
            streams = describe_streams(item.input_path)
        except MediaError as exc:
            raise Drop("empty_file", describe_error(exc, item)) from None
        if streams.video_codec is None:
            raise Drop("no_video_stream", f"no video stream in {item.item}")
        if streams.audio_codec is None:
            raise Drop("no_audio_stream", f"no audio stream in {item.item}")
        try:
            reader = VideoReader(item.input_path)
        except MediaError as exc:
            raise Drop("cannot_decode", describe_error(exc, item)) from None
        count = len(reader)
        if count < limits.min_frames:
            raise Drop("zero_length", f"{count} decodable frames in {item.item}")
        try:  # opening reads the index only; decode the ends and the middle to catch truncated files
            reader.get_frames(sorted({0, count // 2, count - 1}))
        except Exception as exc:  # noqa: BLE001 - decord raises several types
            raise Drop("cannot_decode", f"frames of {item.item} do not decode: {describe_error(exc, item)[:200]}") from None
        try:
            samples = read_audio(item.input_path, sample_rate=self.cfg.resample.sample_rate)
        except MediaError as exc:
            raise Drop("cannot_decode_audio", describe_error(exc, item)) from None
        audio_seconds = len(samples) / self.cfg.resample.sample_rate
        if audio_seconds < limits.min_audio_seconds:
            raise Drop("zero_length", f"{audio_seconds:.3f} s of audio in {item.item}")
        return Outcome.kept({item.item: None}, duration=reader.info.duration, fps=round(reader.info.fps, 4),
                            width=reader.info.width, height=reader.info.height, audio_seconds=round(audio_seconds, 4))
