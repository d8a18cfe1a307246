"""Make a small talking-face demo clip the project owns: a real face with gentle head motion, plus speech.

The face is `skimage.data.astronaut()` (ships with scikit-image, public domain). The speech comes from
espeak-ng when it is installed, otherwise from a synthetic voiced signal (a glottal-pulse-like harmonic
series shaped into syllables), so the clip can always be made offline.

    python -m tools.make_demo_clip                     # assets/demo_video.mp4 + assets/demo_audio.wav
    python -m tools.make_demo_clip --seconds 10 --out_dir /tmp/demo
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEECH_TEXT = ("Hello there. This short clip was made for a lip sync test. "
               "The quick brown fox jumps over the lazy dog, again and again.")


def astronaut_face() -> np.ndarray:
    """The astronaut portrait cropped around the head (RGB uint8, about 300x300)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[0:300, 110:410])


MARKER_BITS, MARKER_CELL = 10, 8  # frame-index code: 10 black/white cells of 8x8 px in the top-left corner


def paint_index_marker(frame: np.ndarray, index: int) -> None:
    """Write `index` as a binary code in the frame's top-left corner (far from the face) for tests to read back."""
    for bit in range(MARKER_BITS):
        value = 255 if (index >> bit) & 1 else 0
        frame[:MARKER_CELL, bit * MARKER_CELL : (bit + 1) * MARKER_CELL] = value


def read_index_marker(frame: np.ndarray) -> int:
    """Inverse of `paint_index_marker` (robust to codec noise: each cell's mean is thresholded)."""
    cells = [frame[1 : MARKER_CELL - 1, b * MARKER_CELL + 1 : (b + 1) * MARKER_CELL - 1].mean() for b in range(MARKER_BITS)]
    return sum(1 << b for b, v in enumerate(cells) if v > 127)


def render_face_frames(num_frames: int, width: int = 360, height: int = 480, fps: float = 25.0,
                       motion: float = 1.0, blank_frames: tuple[int, ...] = (), seed: int = 0,
                       index_marker: bool = False, start: int = 0) -> np.ndarray:
    """Frames start .. start+num_frames-1 (n, h, w, 3) of the face on a plain background, swaying and nodding.

    `motion` scales the head movement (0 = still). Frames listed in `blank_frames` show no face.
    With `index_marker`, each frame carries its index as a small binary code in the top-left corner.
    """
    face = astronaut_face()
    rng = np.random.default_rng(seed)
    background = np.empty((height, width, 3), dtype=np.uint8)
    background[:] = (rng.integers(60, 120), rng.integers(80, 140), rng.integers(100, 160))
    scale = 0.8 * min(width, height) / face.shape[1]
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for i in range(start, start + num_frames):
        t = i / fps
        angle = motion * 3.0 * np.sin(2 * np.pi * 0.4 * t)  # degrees
        dx = motion * 0.03 * width * np.sin(2 * np.pi * 0.25 * t)
        dy = motion * 0.02 * height * np.sin(2 * np.pi * 0.33 * t + 1.0)
        matrix = cv2.getRotationMatrix2D((face.shape[1] / 2, face.shape[0] / 2), angle, scale)
        matrix[0, 2] += width / 2 - face.shape[1] / 2 + dx
        matrix[1, 2] += height / 2 - face.shape[0] / 2 + dy
        frame = background.copy()
        if i not in blank_frames:
            warped = cv2.warpAffine(face, matrix, (width, height), flags=cv2.INTER_LINEAR)
            inside = cv2.warpAffine(np.ones(face.shape[:2], np.uint8), matrix, (width, height)) > 0
            frame[inside] = warped[inside]
        if index_marker:
            paint_index_marker(frame, i)
        frames[i - start] = frame
    return frames


def synthetic_speech(seconds: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-shaped signal (float32 mono in [-1, 1]) standing in for speech."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    pitch = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.zeros(n)
    start = 0.2
    while start < seconds - 0.3:  # syllables of 120-250 ms separated by short pauses
        length = rng.uniform(0.12, 0.25)
        i0, i1 = int(start * sample_rate), int(min(seconds, start + length) * sample_rate)
        envelope[i0:i1] = np.sin(np.linspace(0, np.pi, i1 - i0)) * rng.uniform(0.5, 1.0)
        start += length + rng.uniform(0.05, 0.2)
    signal = voice * envelope
    return (0.6 * signal / (np.abs(signal).max() + 1e-9)).astype(np.float32)


def espeak_speech(seconds: float, sample_rate: int = 16000) -> np.ndarray | None:
    """Speech from espeak-ng, padded/trimmed to `seconds`; None when espeak-ng is not installed."""
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if exe is None:
        return None
    from latentsync.utils.media import read_audio

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        text = " ".join([SPEECH_TEXT] * max(1, int(seconds // 6) + 1))
        subprocess.run([exe, "-s", "150", "-w", str(wav), text], check=True, capture_output=True)
        speech = read_audio(wav, sample_rate)
    out = np.zeros(int(seconds * sample_rate), dtype=np.float32)
    out[: min(len(out), len(speech))] = speech[: len(out)]
    return out


def make_demo_clip(out_dir: Path, seconds: float = 5.0, fps: float = 25.0, width: int = 360, height: int = 480,
                   sample_rate: int = 16000, blank_frames: tuple[int, ...] = (), motion: float = 1.0,
                   video_name: str = "demo_video.mp4", audio_name: str = "demo_audio.wav",
                   index_marker: bool = False, audio_seconds: float | None = None) -> tuple[Path, Path]:
    """Write the demo video (with its speech track) and the speech alone as a WAV. Returns both paths."""
    from latentsync.utils.media import VideoWriter, write_wav

    out_dir.mkdir(parents=True, exist_ok=True)
    audio_seconds = audio_seconds or seconds
    speech = espeak_speech(audio_seconds, sample_rate)
    if speech is None:
        speech = synthetic_speech(audio_seconds, sample_rate)
    audio_path = out_dir / audio_name
    write_wav(audio_path, speech, sample_rate)
    video_path = out_dir / video_name
    num_frames = int(round(seconds * fps))
    with VideoWriter(video_path, fps, audio_path=audio_path, audio_duration=num_frames / fps) as writer:
        for start in range(0, num_frames, 25):  # rendered and written one second at a time
            writer.write(render_face_frames(min(25, num_frames - start), width, height, fps, motion=motion,
                                            blank_frames=blank_frames, index_marker=index_marker, start=start))
    return video_path, audio_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", type=Path, default=REPO_ROOT / "assets")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--width", type=int, default=360)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args(argv)
    video, audio = make_demo_clip(args.out_dir, args.seconds, args.fps, args.width, args.height)
    print(f"wrote {video} and {audio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
