"""Length handling: which source frame each output frame shows, and how long the output is."""

import numpy as np
import pytest

from latentsync.errors import InputError
from latentsync.pipelines.frame_schedule import num_output_frames, source_frame_indices


def test_output_follows_audio_and_keeps_the_tail():
    assert num_output_frames(3.3, 50, 25, "pingpong") == 83  # 82.5 frames of audio -> 83, nothing dropped
    assert num_output_frames(3.3, 50, 25, "loop") == 83
    assert num_output_frames(3.3, 50, 25, "cut_to_shortest") == 50
    assert num_output_frames(1.0, 50, 25, "cut_to_shortest") == 25


def test_silence_keeps_the_longer_video_whole():
    assert num_output_frames(3.0, 200, 25, "silence") == 200  # 8 s of video, 3 s of audio: all 200 frames
    assert source_frame_indices(200, 200, "silence").tolist() == list(range(200))
    # the audio is longer: the default (pingpong) behaviour
    assert num_output_frames(3.3, 50, 25, "silence") == num_output_frames(3.3, 50, 25, "pingpong")
    assert source_frame_indices(83, 50, "silence").tolist() == source_frame_indices(83, 50, "pingpong").tolist()


def test_pingpong_matches_official_concatenation():
    video = np.arange(5)
    official = np.concatenate([video, video[::-1], video, video[::-1]])[:17]
    assert source_frame_indices(17, 5, "pingpong").tolist() == official.tolist()


def test_loop_and_short_audio():
    assert source_frame_indices(12, 5, "loop").tolist() == [0, 1, 2, 3, 4] * 2 + [0, 1]
    for mode in ("pingpong", "loop", "cut_to_shortest", "silence"):
        assert source_frame_indices(3, 5, mode).tolist() == [0, 1, 2]


def test_bad_arguments():
    with pytest.raises(InputError, match="length_mode"):
        num_output_frames(1.0, 5, 25, "bounce")
    with pytest.raises(ValueError, match="no frames"):
        source_frame_indices(3, 0, "loop")
