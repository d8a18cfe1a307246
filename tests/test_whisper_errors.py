"""Bad inputs to the whisper front-end fail with a clear AudioInputError / CheckpointError."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile
import torch

from latentsync.checkpoint import CheckpointError
from latentsync.utils.audio import AudioInputError
from latentsync.utils.media import MediaError, ffmpeg_exe
from latentsync.whisper.audio2feature import Audio2Feature
from latentsync.whisper.tiny import make_random_whisper_checkpoint

SR = 16000


@pytest.fixture(scope="module")
def encoder(ckpts):
    return Audio2Feature(ckpts["whisper"], device="cpu")


def test_error_type_is_a_media_and_value_error():
    assert issubclass(AudioInputError, MediaError) and issubclass(AudioInputError, ValueError)


def test_missing_file(encoder, tmp_path):
    missing = tmp_path / "nope.wav"
    with pytest.raises(AudioInputError, match="not found.*nope.wav"):
        encoder.audio2feat(str(missing))


def test_folder_instead_of_file(encoder, tmp_path):
    with pytest.raises(AudioInputError, match="folder"):
        encoder.audio2feat(str(tmp_path))


def test_video_without_audio_stream(encoder, tmp_path):
    video = tmp_path / "silent_video.mp4"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=gray:s=64x64:d=1",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(video)], check=True)
    with pytest.raises(AudioInputError, match="no audio"):
        encoder.audio2feat(str(video))


def test_not_a_media_file(encoder, tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio" * 10)
    with pytest.raises(AudioInputError, match="junk.wav"):
        encoder.audio2feat(str(junk))


def test_audio_shorter_than_one_frame(encoder, tmp_path):
    short = tmp_path / "blip.wav"
    soundfile.write(short, np.zeros(320, dtype=np.float32), SR)  # 20 ms < 40 ms (one frame at 25 fps)
    with pytest.raises(AudioInputError, match="shorter than one video frame"):
        encoder.audio2feat(str(short))
    with pytest.raises(AudioInputError, match="shorter than one video frame"):
        encoder.audio2feat(np.zeros(100, dtype=np.float32))


def test_one_frame_of_audio_is_enough(encoder):
    feat = encoder.audio2feat(np.zeros(640, dtype=np.float32))
    assert feat.shape[0] == 2 and len(encoder.feature2chunks(feat, fps=25)) >= 1


def test_bad_arrays(encoder):
    with pytest.raises(AudioInputError, match="mono"):
        encoder.audio2feat(np.zeros((3, 100, 100), dtype=np.float32))
    with pytest.raises(AudioInputError, match="NaN"):
        encoder.audio2feat(np.full(16000, np.nan, dtype=np.float32))
    with pytest.raises(AudioInputError, match="dtype"):
        encoder.audio2feat(np.zeros(16000, dtype=np.int32))


def test_feature2chunks_needs_one_frame_and_positive_fps(encoder):
    with pytest.raises(AudioInputError, match="one video frame"):
        encoder.feature2chunks(torch.zeros(1, 3, 64), fps=25)
    with pytest.raises(ValueError, match="fps"):
        encoder.feature2chunks(torch.zeros(10, 3, 64), fps=0)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        Audio2Feature(tmp_path / "tiny.pt", device="cpu")


def test_checkpoint_in_wrong_format(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(CheckpointError, match="dims"):
        Audio2Feature(bad, device="cpu")


def test_checkpoint_with_mismatched_weights(tmp_path):
    path = make_random_whisper_checkpoint(tmp_path / "tiny.pt", seed=0)
    ckpt = torch.load(path, weights_only=True)
    ckpt["dims"]["n_audio_layer"] = 3
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="missing"):
        Audio2Feature(path, device="cpu")
