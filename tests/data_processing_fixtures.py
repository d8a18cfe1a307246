"""Small generated videos for the data-processing tests, and test doubles whose behaviour is known.

Every face clip shows skimage's astronaut on a 128x128 frame. Lip sync is simulated with a "beat" code:
time is cut into 0.2 s beats, each beat is on or off (seeded random bits); on beats show a green patch on
the cheek and play a loud tone, off beats show no patch and near-silence. So the video and audio carry the
same known signal, and a SyncNet stand-in that reads the patch and the loudness finds their offset.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch

from latentsync.utils import media
from tests.helpers import write_video

SIZE = 128
BEAT_SECONDS = 0.2
PATCH = 10  # side of the green cheek patch, pixels at SIZE
GREEN = (0, 230, 0)
LOUD, QUIET = 0.3, 0.002
TONE_HZ = 220.0
FADE_SECONDS = 1.0  # the partly face-less fixture fades its face out over this long
BLUR_SIGMA = 1.5  # the blurry fixture: still detectable as a face, but soft
SHIFT_FRAMES = 3  # audio of the shifted fixture lags its video by this many 25 fps frames

_FACE_REGION = (slice(20, 240), slice(140, 340))  # rows, cols of the face in skimage.data.astronaut()


def _face_image(height: int) -> np.ndarray:
    import skimage.data

    face = skimage.data.astronaut()[_FACE_REGION]
    width = round(face.shape[1] * height / face.shape[0])
    return cv2.resize(face, (width, height), interpolation=cv2.INTER_AREA)


def beat_bits(num_beats: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, size=num_beats).astype(bool)


def frames_for(seconds: float, fps: float, bits: np.ndarray, face: bool = True, face_until: float | None = None,
               background=(90, 120, 160), mirrored: bool = False, blur: bool = False) -> np.ndarray:
    """(n, SIZE, SIZE, 3) RGB frames: a slowly drifting face whose cheek patch follows the beat bits."""
    count = int(round(seconds * fps))
    frames = np.empty((count, SIZE, SIZE, 3), dtype=np.uint8)
    portrait = _face_image(SIZE - 8)
    if mirrored:
        portrait = portrait[:, ::-1]
    ph, pw = portrait.shape[:2]
    for i in range(count):
        t = i / fps
        frame = np.empty((SIZE, SIZE, 3), dtype=np.uint8)
        frame[:] = background
        # The face fades out over FADE_SECONDS before face_until (a gradual change, so no scene cut).
        alpha = 1.0 if face_until is None else float(np.clip((face_until - t) / FADE_SECONDS, 0.0, 1.0))
        if face and alpha > 0:
            dx = int(round(2 * math.sin(2 * math.pi * t / 3.0)))
            dy = int(round(1.5 * math.cos(2 * math.pi * t / 4.0)))
            y0, x0 = 4 + dy, (SIZE - pw) // 2 + dx
            face_pixels = portrait.copy()
            if bits[min(int(t / BEAT_SECONDS), len(bits) - 1)]:
                cy, cx = int(0.57 * ph), int((0.32 if mirrored else 0.68) * pw)
                face_pixels[cy:cy + PATCH, cx - PATCH // 2:cx + PATCH // 2] = GREEN
            region = frame[y0:y0 + ph, x0:x0 + pw].astype(np.float32)
            frame[y0:y0 + ph, x0:x0 + pw] = np.rint(alpha * face_pixels + (1 - alpha) * region).astype(np.uint8)
        if blur:
            frame = cv2.GaussianBlur(frame, (0, 0), BLUR_SIGMA)
        frames[i] = frame
    return frames


def audio_for(seconds: float, rate: int, bits: np.ndarray, delay_frames: int = 0, channels: int = 1) -> np.ndarray:
    """Loud tone on on-beats, near-silence on off-beats; `delay_frames` (25 fps frames) makes it lag the video."""
    t = np.arange(int(round(seconds * rate))) / rate
    beat = np.floor((t - delay_frames / 25.0) / BEAT_SECONDS + 1e-9).astype(int)
    on = np.where(beat >= 0, bits[np.clip(beat, 0, len(bits) - 1)], False)
    noise = np.random.default_rng(3).standard_normal(len(t))
    signal = np.where(on, LOUD * np.sin(2 * np.pi * TONE_HZ * t), QUIET * noise).astype(np.float32)
    return np.stack([signal] * channels, axis=1) if channels > 1 else signal


def write_clip(path: Path, frames: np.ndarray, fps: float, audio: np.ndarray | None, rate: int = 16000) -> Path:
    audio_path = None
    if audio is not None:
        audio_path = path.with_suffix(".src.wav")
        media.write_wav(audio_path, audio, rate)
    try:
        write_video(path, [frames], fps=fps, audio_path=audio_path)
    finally:
        if audio_path is not None:
            audio_path.unlink(missing_ok=True)
    return path


def av_clip(path: Path, seconds: float, fps: float = 25, rate: int = 16000, channels: int = 1, delay_frames: int = 0,
            seed: int = 7, **frame_options) -> Path:
    bits = beat_bits(int(math.ceil(seconds / BEAT_SECONDS)) + 1, seed)
    frames = frames_for(seconds, fps, bits, **frame_options)
    return write_clip(path, frames, fps, audio_for(seconds, rate, bits, delay_frames, channels), rate)


def two_shot_clip(path: Path, seconds_each: float = 6.0, fps: float = 25, rate: int = 16000) -> Path:
    """Two shots with a hard cut at `seconds_each`: different background, mirrored face."""
    bits = beat_bits(int(math.ceil(2 * seconds_each / BEAT_SECONDS)) + 1, seed=11)
    first = frames_for(seconds_each, fps, bits)
    second_bits = bits[int(round(seconds_each / BEAT_SECONDS)):]
    second = frames_for(seconds_each, fps, second_bits, background=(200, 60, 40), mirrored=True)
    return write_clip(path, np.concatenate([first, second]), fps, audio_for(2 * seconds_each, rate, bits), rate)


# Expected fate of every fixture, step by step (None = not reached).
FIXTURES = {
    "corrupt.mp4": "broken:cannot_decode",
    "no_audio.mp4": "broken:no_audio_stream",
    "fps30_44k.mp4": "kept",
    "two_shots.mp4": "kept",
    "short_3s.mp4": "segment:too_short",
    "long_25s.mp4": "kept",
    "face_partly_missing.mp4": "affine:face_missing",
    "audio_shift.mp4": "kept",
    "blurry.mp4": "quality:low_quality",
}


def build_fixture_folder(folder: Path, long_seconds: float = 25.0) -> Path:
    """The raw input folder of the pipeline tests (~1 s to build)."""
    folder.mkdir(parents=True, exist_ok=True)
    valid = av_clip(folder / "corrupt.mp4", 2.0)
    data = valid.read_bytes()
    valid.write_bytes(data[: len(data) // 3])  # truncated download: header present, frames missing
    write_clip(folder / "no_audio.mp4", frames_for(6.0, 25, beat_bits(31)), 25, None)
    av_clip(folder / "fps30_44k.mp4", 6.0, fps=30, rate=44100, channels=2, seed=5)
    two_shot_clip(folder / "two_shots.mp4")
    av_clip(folder / "short_3s.mp4", 3.0, seed=6)
    av_clip(folder / "long_25s.mp4", long_seconds, seed=8)
    av_clip(folder / "face_partly_missing.mp4", 8.0, face_until=4.5, seed=9)
    av_clip(folder / "audio_shift.mp4", 6.0, delay_frames=SHIFT_FRAMES, seed=10)
    av_clip(folder / "blurry.mp4", 6.0, blur=True, seed=12)
    return folder


# ----------------------------------------------------------------------------------------------- test doubles


def green_fraction(frames: torch.Tensor) -> torch.Tensor:
    """Share of strongly green pixels per frame of (B, 3, T, H, W) BGR 0..255 windows -> (B, T)."""
    b, g, r = frames[:, 0], frames[:, 1], frames[:, 2]
    green = (g > 150) & (r < 110) & (b < 110)
    return green.float().mean(dim=(-2, -1))


def loudness_threshold() -> float:
    """MFCC c0 (log frame energy, int16 scale) half-way between an on-beat and an off-beat."""
    import python_speech_features

    rate = 16000
    t = np.arange(rate // 5) / rate
    loud = np.rint(LOUD * np.sin(2 * np.pi * TONE_HZ * t) * 32768).astype(np.int16)
    quiet = np.rint(QUIET * np.random.default_rng(0).standard_normal(len(t)) * 32768).astype(np.int16)
    c0 = [python_speech_features.mfcc(x, rate)[:, 0].mean() for x in (loud, quiet)]
    return float(sum(c0) / 2)


class BeatSyncNet(torch.nn.Module):
    """SyncNet stand-in with known behaviour: per frame, +SCALE when the beat is on, -SCALE when off.

    forward_lip reads the green patch in each of the 5 frames; forward_aud reads the loudness (MFCC c0)
    of each 4-column (one frame) group of the 20-column window. In-sync windows embed identically.
    """

    SCALE = 5.0

    def __init__(self):
        super().__init__()
        self.c0_threshold = loudness_threshold()

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        on = green_fraction(x) > 0.0015
        return (on.float() * 2 - 1) * self.SCALE

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        c0 = x[:, 0, 0, :].reshape(x.shape[0], -1, 4).mean(dim=-1)  # (B, 5): one value per video frame
        return ((c0 > self.c0_threshold).float() * 2 - 1) * self.SCALE


def beat_syncnet(cfg=None):
    """models.syncnet.factory for the tests: the evaluation SyncNetEval wrapper around BeatSyncNet."""
    from eval.settings import SyncNetProtocol
    from eval.syncnet.syncnet_eval import SyncNetEval

    wrapper = SyncNetEval(width_divisor=8, protocol=SyncNetProtocol.from_eval_config())
    wrapper.__S__ = BeatSyncNet()
    return wrapper


class CentreFaceBoxes:
    """Face-detector stand-in for aligned clips: the face fills the centre of every frame."""

    name = "centre-box"

    def __call__(self, frame_rgb: np.ndarray) -> np.ndarray:
        h, w = frame_rgb.shape[:2]
        return np.array([[0.15 * w, 0.1 * h, 0.85 * w, 0.9 * h, 0.99]])


def centre_face_boxes(cfg=None):
    return CentreFaceBoxes()


class SharpnessQuality:
    """HyperIQA stand-in: score = 100 * Laplacian energy / (energy + K): sharp faces score high, blur low."""

    K = 16.0  # Laplacian variance of the aligned fixture faces after the pipeline: ~20 sharp, ~7 blurred

    def score_frames(self, frames_rgb: np.ndarray) -> float:
        values = []
        for frame in frames_rgb:
            grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float64)
            energy = cv2.Laplacian(grey, cv2.CV_64F).var()
            values.append(100.0 * energy / (energy + self.K))
        return float(np.mean(values))


def sharpness_quality(cfg=None):
    return SharpnessQuality()


# ----------------------------------------------------------------------------------------------- inspection


def audio_facts(path: Path) -> tuple[int, int]:
    """(sample rate, channels) of a file's first audio stream, read from ffmpeg's stream report."""
    import re
    import subprocess

    report = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
                            text=True, errors="replace").stderr
    match = re.search(r"Stream #\d+:\d+.*: Audio: .*?, (\d+) Hz, (mono|stereo|[\d.]+ channels?)", report)
    if match is None:
        raise AssertionError(f"no audio stream in {path}:\n{report}")
    layout = match.group(2)
    channels = {"mono": 1, "stereo": 2}.get(layout) or int(float(layout.split()[0]))
    return int(match.group(1)), channels


def aligned_like_clip(path: Path, seconds: float = 6.0, video_seed: int = 7, audio_seed: int | None = None,
                      delay_frames: int = 0, blur_sigma: float = 0.0, size: int = 256) -> Path:
    """A 25 fps face clip at the aligned size (what steps 6-7 read), optionally with unrelated or late audio,
    or blurred (Gaussian `blur_sigma` at the output size)."""
    count = int(math.ceil(seconds / BEAT_SECONDS)) + 1
    frames = frames_for(seconds, 25, beat_bits(count, video_seed))
    frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) for f in frames])
    if blur_sigma > 0:
        frames = np.stack([cv2.GaussianBlur(f, (0, 0), blur_sigma) for f in frames])
    audio = audio_for(seconds, 16000, beat_bits(count, audio_seed if audio_seed is not None else video_seed),
                      delay_frames)
    return write_clip(path, frames, 25, audio)


class FailingQuality:
    """A scorer that raises on every clip (an unexpected error inside a step)."""

    def score_frames(self, frames_rgb: np.ndarray) -> float:
        raise RuntimeError("scorer exploded")


def failing_quality(cfg=None):
    return FailingQuality()


def unbuildable_model(cfg=None):
    """A factory that fails while a worker sets up (e.g. a GPU that cannot be used)."""
    raise RuntimeError("cannot build this model here")
